package bpf

import "github.com/cilium/ebpf"

// specLoaders gives each BPF object's embedded CollectionSpec, as bpf2go
// generated it for this architecture.
var specLoaders = map[string]func() (*ebpf.CollectionSpec, error){
	"oncpu":   loadOncpu,
	"offcpu":  loadOffcpu,
	"faults":  loadFaults,
	"runqlat": loadRunqlat,
	"biolat":  loadBiolat,
	"tcp":     loadTcp,
	"procs":   loadProcs,
}
