package bpf

import (
	"math"
	"slices"
	"testing"
)

// These tests need no privileges.

func TestHistogramQuantile(t *testing.T) {
	var h Histogram
	// 100 values of 1000 land in slot 9 ([512, 1024)); 100 of 100000 in
	// slot 16 ([65536, 131072)).
	h.Slots[9], h.Slots[16] = 100, 100
	h.Count, h.Sum = 200, 100*1000+100*100000
	for _, tc := range []struct {
		q      float64
		lo, hi float64
	}{
		{0, 512, 512},
		{0.25, 512, 1024},
		{0.5, 1023, 1024},
		{0.99, 65536, 131072},
		{1, 131072, 131072},
	} {
		if got := h.Quantile(tc.q); got < tc.lo || got > tc.hi {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", tc.q, got, tc.lo, tc.hi)
		}
	}
	if got, want := h.Mean(), 50500.0; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram should give 0")
	}
	m := h
	m.Merge(&h)
	if m.Count != 400 || m.Slots[9] != 200 || math.Abs(m.Quantile(0.5)-h.Quantile(0.5)) > 1e-9 {
		t.Errorf("merge of a histogram with itself changed its shape: %+v", m)
	}
}

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

func TestOptionsValidate(t *testing.T) {
	ok := Options{}.withDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if ok.Frequency != DiagnoseFrequency || len(ok.Collectors) != len(AllCollectors) {
		t.Errorf("defaults: %+v", ok)
	}
	for name, o := range map[string]Options{
		"frequency":     {Frequency: 100000},
		"unknown":       {Collectors: []Collector{"kprobes"}},
		"duplicate":     {Collectors: []Collector{OnCPU, OnCPU}},
		"negative pid":  {PIDs: []int{-1}},
		"too many pids": {PIDs: make([]int, maxTargetPIDs+1)},
	} {
		if err := o.withDefaults().validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
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
