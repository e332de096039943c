package verdict

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// sentence is a verdict's summary without what a Summary cannot keep over
// a span: its first priority and its findings.
func sentence(s string) string {
	for _, cut := range []string{"; first to optimize", "; but see the findings"} {
		if i := strings.Index(s, cut); i >= 0 {
			s = s[:i] + "."
		}
	}
	return s
}

// TestSummarize: a recorded verdict's summary holds its class, loads and
// sentence, the run-queue load the class was chosen with, and a copy of
// its loads; a verdict read back from JSON summarizes the same.
func TestSummarize(t *testing.T) {
	obs := recorded(t)
	for _, name := range []string{"contention-c-mutex", "mixed-cpu-io", "memory-churn"} {
		o := obs[name]
		v := Judge(o, DefaultThresholds())
		s := v.Summarize()
		if s.Class != v.Class || s.Secondary != v.Secondary || s.Confidence != v.Confidence || s.Summary != v.Summary || !reflect.DeepEqual(s.Load, v.Load) {
			t.Errorf("%s: summary %+v of verdict %s/%s %.2f %v", name, s, v.Class, v.Secondary, v.Confidence, v.Load)
		}
		if want := v.Breakdown.RunQueueCPU / o.WindowSeconds(); !closeTo(s.RunQueue, want) || want <= 0 {
			t.Errorf("%s: run queue %.6f, want %.6f", name, s.RunQueue, want)
		}
		s.Load[ClassCPU] = -1
		if v.Load[ClassCPU] == -1 {
			t.Errorf("%s: the summary's loads are the verdict's map", name)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Verdict
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Summarize(); !closeTo(got.RunQueue, v.Summarize().RunQueue) {
			t.Errorf("%s: run queue %.6f read back from JSON, %.6f judged", name, got.RunQueue, v.Summarize().RunQueue)
		}
	}
}

// TestCombineOne: the span of one window is that window, judged alike,
// whatever its length, for every recorded workload.
func TestCombineOne(t *testing.T) {
	th := DefaultThresholds()
	obs := recorded(t)
	names := make([]string, 0, len(obs))
	for n := range obs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		v := Judge(obs[name], th)
		s := v.Summarize()
		for _, w := range []float64{v.Duration.Seconds(), 600} {
			c := Combine([]Summary{s}, []float64{w}, th)
			if c.Class != s.Class || c.Secondary != s.Secondary || c.Confidence != s.Confidence || !closeTo(c.RunQueue, s.RunQueue) {
				t.Errorf("%s weighted %g: %s/%s %.2f, want %s/%s %.2f", name, w, c.Class, c.Secondary, c.Confidence, s.Class, s.Secondary, s.Confidence)
			}
			for k, l := range s.Load {
				if !closeTo(c.Load[k], l) {
					t.Errorf("%s: load %s %.9f, want %.9f", name, k, c.Load[k], l)
				}
			}
			if want := sentence(v.Summary); c.Summary != want {
				t.Errorf("%s: summary %q, want %q", name, c.Summary, want)
			}
		}
	}
}

// TestCombineWeighted: windows count by their length; the span's class
// is chosen from the weighted loads (the longer I/O-bound time makes the
// span I/O-bound, the longer CPU-bound time CPU-bound), and its
// confidence is the weighted mean.
func TestCombineWeighted(t *testing.T) {
	th := DefaultThresholds()
	obs := recorded(t)
	hash, fsync := Judge(obs["cpu-hash"], th).Summarize(), Judge(obs["io-fsync"], th).Summarize()
	for _, c := range []struct {
		wHash, wFsync    float64
		class, secondary Class
	}{
		{10, 30, ClassIO, ClassCPU},
		{30, 10, ClassCPU, ""},
		{10, 10, ClassCPU, ClassIO},
	} {
		got := Combine([]Summary{hash, fsync}, []float64{c.wHash, c.wFsync}, th)
		total := c.wHash + c.wFsync
		for _, k := range Classes {
			want := (c.wHash*hash.Load[k] + c.wFsync*fsync.Load[k]) / total
			if !closeTo(got.Load[k], want) {
				t.Errorf("%g:%g: load %s %.6f, want %.6f", c.wHash, c.wFsync, k, got.Load[k], want)
			}
		}
		if got.Class != c.class || got.Secondary != c.secondary {
			t.Errorf("%g:%g: %s/%s (%v), want %s/%s", c.wHash, c.wFsync, got.Class, got.Secondary, got.Load, c.class, c.secondary)
		}
		if want := math.Round((c.wHash*hash.Confidence+c.wFsync*fsync.Confidence)/total*100) / 100; got.Confidence != want {
			t.Errorf("%g:%g: confidence %.2f, want %.2f", c.wHash, c.wFsync, got.Confidence, want)
		}
		if !strings.HasPrefix(got.Summary, map[Class]string{ClassIO: "I/O-bound", ClassCPU: "CPU-bound"}[c.class]) {
			t.Errorf("%g:%g: summary %q", c.wHash, c.wFsync, got.Summary)
		}
	}
}

// TestCombineRunQueue: the span's class is chosen as a window's is, with
// the CPU time spent waiting for a CPU left out of memory management's
// share: a CPU load that is mostly waiting leaves memory the bottleneck.
func TestCombineRunQueue(t *testing.T) {
	th := DefaultThresholds()
	a := Summary{Class: ClassMemory, Load: map[Class]float64{ClassCPU: 1.2, ClassMemory: 0.3}, RunQueue: 1.0}
	b := Summary{Class: ClassMemory, Load: map[Class]float64{ClassCPU: 0.8, ClassMemory: 0.3}, RunQueue: 0.6}
	if p, _ := choose(a.Load, a.RunQueue, th); p != ClassMemory {
		t.Fatalf("the window itself chooses %s", p)
	}
	got := Combine([]Summary{a, b}, []float64{10, 10}, th)
	if got.Class != ClassMemory || !closeTo(got.RunQueue, 0.8) {
		t.Errorf("span %s with run queue %.2f, want memory with 0.8", got.Class, got.RunQueue)
	}
	a.RunQueue, b.RunQueue = 0, 0
	if got := Combine([]Summary{a, b}, []float64{10, 10}, th); got.Class != ClassCPU {
		t.Errorf("without the run queue: %s, want cpu (the rule takes it out)", got.Class)
	}
}

// TestCombineNothing: summaries that count for nothing make a span of no
// time, judged none, with no NaN; a summary without a weight is left out.
func TestCombineNothing(t *testing.T) {
	th := DefaultThresholds()
	cpu := Summary{Class: ClassCPU, Confidence: 1, Load: map[Class]float64{ClassCPU: 1}}
	io := Summary{Class: ClassIO, Confidence: 0.9, Load: map[Class]float64{ClassIO: 1}}
	for _, w := range [][]float64{nil, {0}, {-3}, {math.NaN()}, {math.Inf(1)}} {
		got := Combine([]Summary{cpu}, w, th)
		if got.Class != ClassNone || got.Summary != noTime || got.Confidence != 0 || got.Load == nil || len(got.Load) != 0 {
			t.Errorf("weights %v: %+v", w, got)
		}
	}
	if got := Combine(nil, nil, th); got.Class != ClassNone {
		t.Errorf("no summaries: %+v", got)
	}
	if got, want := Combine([]Summary{cpu, io}, []float64{5}, th), Combine([]Summary{cpu}, []float64{5}, th); !reflect.DeepEqual(got, want) {
		t.Errorf("a summary without a weight counted: %+v, want %+v", got, want)
	}
	if got := Combine([]Summary{cpu, io}, []float64{5, math.NaN()}, th); got.Class != ClassCPU || got.Load[ClassIO] != 0 {
		t.Errorf("a NaN weight counted: %+v", got)
	}
}

// TestSummaryJSON: the names a store keeps a summary under.
func TestSummaryJSON(t *testing.T) {
	b, err := json.Marshal(Summary{Class: ClassCPU, Secondary: ClassIO, Confidence: 0.5, Load: map[Class]float64{ClassCPU: 1}, Summary: "s", RunQueue: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"class":"cpu","secondary":"io","confidence":0.5,"load":{"cpu":1},"summary":"s","run_queue":0.1}`
	if string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
}
