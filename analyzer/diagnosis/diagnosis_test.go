package diagnosis

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/doccheck"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

func TestAnalyzeProcess(t *testing.T) {
	o, err := observation.Load("../../fixtures/observations/io-fsync")
	if err != nil {
		t.Fatal(err)
	}
	r := Analyze(o, DefaultOptions())
	if r.Verdict.Class != verdict.ClassIO || len(r.Processes) != 0 {
		t.Fatalf("io-fsync: class %s, %d processes; want io and none", r.Verdict.Class, len(r.Processes))
	}
	var text, js bytes.Buffer
	if err := r.WriteText(&text, verdict.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "Processes by impact") {
		t.Error("a process report lists processes")
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema    string                 `json:"schema"`
		Verdict   struct{ Class string } `json:"verdict"`
		Processes []any                  `json:"processes"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != Schema || doc.Verdict.Class != "io" || doc.Processes == nil {
		t.Errorf("JSON: %+v (processes must be [], not null)", doc)
	}
}

func TestAnalyzeHost(t *testing.T) {
	o := syntheticHost(t, 30)
	r := Analyze(o, DefaultOptions())
	if r.Verdict.Target.Kind != observation.TargetHost {
		t.Fatalf("target %+v", r.Verdict.Target)
	}
	if len(r.Processes) == 0 || len(r.Processes) > 10 {
		t.Fatalf("%d processes listed, want 1 to 10", len(r.Processes))
	}
	judged := 0
	for i, p := range r.Processes {
		if i > 0 && p.Load > r.Processes[i-1].Load {
			t.Errorf("processes out of order at %d", i)
		}
		if p.Verdict != nil {
			judged++
			if p.Verdict.Target.PID != p.PID {
				t.Errorf("process %d judged as %+v", p.PID, p.Verdict.Target)
			}
		}
	}
	if judged == 0 || judged > 3 {
		t.Errorf("%d processes judged, want 1 to 3", judged)
	}
	var text, md, js, html bytes.Buffer
	for _, err := range []error{r.WriteText(&text, verdict.TextOptions{}), r.WriteMarkdown(&md), r.WriteJSON(&js), r.WriteHTML(&html)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	first := r.Processes[0]
	for name, out := range map[string]string{"text": text.String(), "markdown": md.String(), "html": html.String()} {
		if !strings.Contains(out, "Processes by impact") && !strings.Contains(out, "Processes") {
			t.Errorf("%s report has no processes section", name)
		}
		if !strings.Contains(out, first.Comm) {
			t.Errorf("%s report does not name the busiest process %q", name, first.Comm)
		}
	}
	var doc struct {
		Processes []struct {
			PID     int `json:"pid"`
			Verdict *struct{ Class string }
		} `json:"processes"`
		Ranked int `json:"processes_ranked"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Processes) != len(r.Processes) || doc.Processes[0].PID != first.PID || doc.Processes[0].Verdict == nil || doc.Ranked < len(doc.Processes) {
		t.Errorf("JSON processes: %+v", doc)
	}
}

// TestAnalyzeHostLeavesOutTheWatcher: the process that watched, named in
// the observation, is never among a host's processes, whatever its load.
func TestAnalyzeHostLeavesOutTheWatcher(t *testing.T) {
	o := syntheticHost(t, 30)
	busiest := Analyze(o, DefaultOptions()).Processes[0].PID
	o.Meta.WatcherPID = busiest
	r := Analyze(o, DefaultOptions())
	for _, p := range r.Processes {
		if p.PID == busiest {
			t.Fatalf("the watcher, %d, ranked: %+v", busiest, p.Process)
		}
	}
	if len(r.Processes) == 0 {
		t.Fatal("no processes left")
	}
}

// TestReportJSONDocumented: the JSON example of docs/analysis.md is a
// perfhound.diagnosis/v1 document whose every field the report's types
// know, and it shows every field WriteJSON writes for the observation it
// was taken from (io-fsync), at the top and in the verdict.
func TestReportJSONDocumented(t *testing.T) {
	const doc = "../../docs/analysis.md"
	example := doccheck.Block(t, doc, "5. Reports", "json")
	dec := json.NewDecoder(strings.NewReader(example))
	dec.DisallowUnknownFields()
	var typed jsonReport
	if err := dec.Decode(&typed); err != nil {
		t.Fatalf("%s: the example does not read as the report: %v", doc, err)
	}
	if typed.Schema != Schema {
		t.Errorf("%s: the example's schema is %q, want %q", doc, typed.Schema, Schema)
	}

	o, err := observation.Load("../../fixtures/observations/io-fsync")
	if err != nil {
		t.Fatal(err)
	}
	var written bytes.Buffer
	if err := Analyze(o, DefaultOptions()).WriteJSON(&written); err != nil {
		t.Fatal(err)
	}
	keys := func(what string, b []byte) (top, v map[string]json.RawMessage) {
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := json.Unmarshal(top["verdict"], &v); err != nil {
			t.Fatalf("%s: .verdict: %v", what, err)
		}
		return top, v
	}
	docTop, docVerdict := keys(doc, []byte(example))
	top, v := keys("WriteJSON", written.Bytes())
	for k := range top {
		if _, ok := docTop[k]; !ok {
			t.Errorf("%s: the example has no %q, which WriteJSON writes", doc, k)
		}
	}
	for k := range v {
		if _, ok := docVerdict[k]; !ok {
			t.Errorf("%s: the example's verdict has no %q, which WriteJSON writes", doc, k)
		}
	}
}

// TestHostRankingIsStable ranks a host whose processes come in twins
// (each fixture twice, same samples) again and again: a saved
// observation analyzed later must give the same report, so the twins'
// loads must be equal to the bit and their order the same every time.
func TestHostRankingIsStable(t *testing.T) {
	o := syntheticHost(t, 30)
	var first []procrank.Process
	for i := range 20 {
		ranked := procrank.NewHost(o).Rank()
		if i == 0 {
			first = ranked
			continue
		}
		if len(ranked) != len(first) {
			t.Fatalf("run %d: %d processes, first run %d", i, len(ranked), len(first))
		}
		for j := range ranked {
			if ranked[j].PID != first[j].PID || math.Float64bits(ranked[j].Load) != math.Float64bits(first[j].Load) {
				t.Fatalf("run %d, rank %d: pid %d load %v; first run pid %d load %v", i, j, ranked[j].PID, ranked[j].Load, first[j].PID, first[j].Load)
			}
		}
	}
}
