//go:build !(linux && amd64)

package bpf

import (
	"fmt"
	"runtime"
)

// The BPF objects are built for linux/amd64 (vmlinux.h is per
// architecture); elsewhere Probe says so and Start refuses, so that the
// rest of perfhound builds and falls back everywhere.

var errPlatform = fmt.Errorf("%w: %s/%s (the eBPF collectors are built for linux/amd64)", ErrUnsupported, runtime.GOOS, runtime.GOARCH)

// Probe reports every collector as unsupported on this platform.
func Probe() Support {
	s := Support{Collectors: map[Collector]error{}}
	for _, c := range AllCollectors {
		s.Collectors[c] = errPlatform
	}
	return s
}

// Session is never started on this platform.
type Session struct{}

// Start fails: the collectors need linux/amd64.
func Start(Options) (*Session, error) { return nil, errPlatform }

func (*Session) Read() (*Window, error)                { return nil, errPlatform }
func (*Session) Close() error                          { return nil }
func (*Session) ProgramStats() ([]ProgramStats, error) { return nil, errPlatform }
func (*Session) SetFrequency(int) error                { return errPlatform }
func (*Session) Frequency() int                        { return 0 }
