package bpf

import (
	"errors"
	"fmt"
)

// Support is what Probe found: whether each collector can run on this
// host and, when it cannot, why.
type Support struct {
	Kernel string `json:"kernel"`
	// Collectors maps each collector to nil when it can run, or to the
	// reason it cannot.
	Collectors map[Collector]error `json:"-"`
	// Tracefs is where tracefs is mounted, or "" when it is not.
	Tracefs string `json:"tracefs,omitempty"`
	// Notes are limitations that do not stop collection, such as kernel
	// symbols hidden by kptr_restrict.
	Notes []string `json:"notes,omitempty"`
}

// Available reports whether at least one collector can run.
func (s Support) Available() bool {
	for _, err := range s.Collectors {
		if err == nil {
			return true
		}
	}
	return false
}

// Missing lists the collectors that cannot run, with the reason, in
// AllCollectors order: what a report says it did without.
func (s Support) Missing() []string {
	var out []string
	for _, c := range AllCollectors {
		if err := s.Collectors[c]; err != nil {
			out = append(out, fmt.Sprintf("%s: %v", c, err))
		}
	}
	return out
}

// Errors that Probe and Start wrap.
var (
	ErrPrivileges  = errors.New("needs root, or CAP_BPF and CAP_PERFMON")
	ErrNoBTF       = errors.New("kernel has no BTF (/sys/kernel/btf/vmlinux), needed for tp_btf programs")
	ErrUnsupported = errors.New("not supported on this platform")
)
