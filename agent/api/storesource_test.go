package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// cpuTotal is the total of o's cpu profiles.
func cpuTotal(o *observation.Observation) int64 {
	var sum int64
	for _, p := range o.Profiles {
		if p.Kind == observation.KindCPU && p.Profile != nil {
			sum += profileTotal(p.Profile)
		}
	}
	return sum
}

// TestStoreSourceChunks reads hours of the real store through
// StoreSource in the API's 5-minute chunks: half an hour of raw 10 s
// windows, of windows rolled up to 1 min, and to 10 min, all starting
// 7 s past the chunks' boundaries, so that windows straddle chunks. A
// merged hour counts each window once: its cpu samples and its Duration
// are those of the windows that start in it (the store returned the
// windows that overlap a chunk: 31, 36 and 90 minutes).
func TestStoreSourceChunks(t *testing.T) {
	windows := goserviceWindows(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(t.TempDir(), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hours := []struct {
		name  string
		start time.Time
		kept  int // records after Maintain
	}{
		{"raw 10 s", now.Add(-2 * time.Hour), 180},
		{"1 min", now.Add(-10 * time.Hour), 30},
		{"10 min", now.Add(-60 * time.Hour), 3},
	}
	want := map[time.Time]int64{}
	for _, h := range hours {
		var b store.Batch    // an hour's windows in one write, for speed
		for i := range 180 { // half an hour
			o := *windows[i%len(windows)]
			o.Meta.Start = h.start.Add(7*time.Second + time.Duration(i)*10*time.Second)
			o.Meta.Duration = 10 * time.Second
			want[h.start] += cpuTotal(&o)
			b.Records = append(b.Records, store.Record{Service: "goservice", Version: "v1", Obs: &o})
		}
		if err := st.Put(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := New(StoreSource(st, func() bool { return true }), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The query's budget is the store's (it used to use its own QueryMemory).
	src := StoreSource(st, func() bool { return true })
	_, err = src.Range(Query{Service: "goservice", From: hours[0].start, To: hours[0].start.Add(time.Minute), Budget: profdecode.NewBudget(1 << 10)})
	if !errors.Is(err, profdecode.ErrOverBudget) {
		t.Errorf("a minute's windows within 1 KiB: %v, want ErrOverBudget", err)
	}
	for _, h := range hours {
		rs, err := st.Range(store.Query{Service: "goservice", From: h.start, To: h.start.Add(time.Hour), Kinds: []observation.ProfileKind{}})
		if err != nil || len(rs) != h.kept {
			t.Fatalf("%s: %d records, want %d (%v)", h.name, len(rs), h.kept, err)
		}
		o, err := s.gather(context.Background(), Query{Service: "goservice", From: h.start, To: h.start.Add(time.Hour),
			Kinds: []observation.ProfileKind{observation.KindCPU}}, "from", true)
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		if got := cpuTotal(o); got != want[h.start] || o.Meta.Duration != 30*time.Minute {
			t.Errorf("%s: cpu %d over %s, want %d over 30m0s (each window once)", h.name, got, o.Meta.Duration, want[h.start])
		}
	}
}
