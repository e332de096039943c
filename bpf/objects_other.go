//go:build !amd64

package bpf

import "github.com/cilium/ebpf"

// The objects are generated for amd64 only (vmlinux.h is per
// architecture); elsewhere Probe says so and Start refuses.
const haveObjects = false

var specLoaders = map[string]func() (*ebpf.CollectionSpec, error){}
