//go:build linux && amd64

package bpf

import (
	"slices"
	"testing"

	"github.com/google/pprof/profile"
)

// Tests of the Linux side's helpers; they need no privileges.

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"0":         {0},
		"0-3":       {0, 1, 2, 3},
		"0-1,4,6-7": {0, 1, 4, 6, 7},
	} {
		got, err := parseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "0-"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
}

func TestTaskState(t *testing.T) {
	for state, want := range map[uint32]string{
		0:           "R",
		0x1:         "S",
		0x1 | 0x100: "S", // TASK_KILLABLE sleeps interruptibly by signal
		0x2:         "D",
		0x2 | 0x400: "I", // TASK_IDLE
		0x2 | 0x100: "D", // TASK_KILLABLE
		0x4:         "T",
		0x8:         "T",
		0x40:        "P",
		0x80:        "X",
	} {
		if got := taskState(state); got != want {
			t.Errorf("taskState(%#x) = %s, want %s", state, got, want)
		}
	}
}

func TestCString(t *testing.T) {
	if got := cString([]int8{'b', 'a', 's', 'h', 0, 'x'}); got != "bash" {
		t.Errorf("cString = %q", got)
	}
	full := make([]int8, 16)
	for i := range full {
		full[i] = 'a'
	}
	if got := cString(full); len(got) != 16 {
		t.Errorf("unterminated comm: %q", got)
	}
}

// TestProbeNamesEveryCollector checks that Probe answers for every
// collector, whatever this machine allows.
func TestProbeNamesEveryCollector(t *testing.T) {
	s := Probe()
	for _, c := range AllCollectors {
		if _, ok := s.Collectors[c]; !ok {
			t.Errorf("Probe says nothing about %s", c)
		}
	}
	if s.Available() != (len(s.Missing()) < len(AllCollectors)) {
		t.Errorf("Available() = %v with %d of %d collectors missing", s.Available(), len(s.Missing()), len(AllCollectors))
	}
}

func TestTrimTracingFrames(t *testing.T) {
	kernel := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]"}
	bpfMap := &profile.Mapping{ID: 2, File: "[bpf]"}
	var locs []*profile.Location
	loc := func(m *profile.Mapping, fn string) *profile.Location {
		l := &profile.Location{ID: uint64(len(locs) + 1), Mapping: m, Line: []profile.Line{{Function: &profile.Function{ID: uint64(len(locs) + 1), Name: fn}}}}
		locs = append(locs, l)
		return l
	}
	stack := []*profile.Location{
		loc(bpfMap, "bpf_prog_5bd4079d6551beb4_off_cpu"),
		loc(kernel, "__traceiter_sched_switch"),
		loc(kernel, "bpf_trace_run4"),
		loc(kernel, "__schedule"),
		loc(kernel, "schedule"),
	}
	p := &profile.Profile{Sample: []*profile.Sample{{Location: stack}}, Location: locs}
	trimTracingFrames(p)
	got := p.Sample[0].Location
	if len(got) != 2 || got[0].Line[0].Function.Name != "__schedule" {
		t.Errorf("trimmed stack starts at %s with %d frames, want __schedule with 2", got[0].Line[0].Function.Name, len(got))
	}
	if len(p.Location) != 2 {
		t.Errorf("%d locations kept, want the 2 still used", len(p.Location))
	}
}
