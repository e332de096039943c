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
		"too many pids": {PIDs: slices.Repeat([]int{1}, maxTargetPIDs+1)},
	} {
		if err := o.withDefaults().validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
}
