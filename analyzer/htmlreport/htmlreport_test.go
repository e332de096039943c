package htmlreport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/net/html"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

const fixtures = "../../fixtures/observations"

// load reads a recorded observation and judges it.
func load(t testing.TB, name string) (*observation.Observation, *verdict.Verdict) {
	t.Helper()
	o, err := observation.Load(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return o, verdict.Judge(o, verdict.DefaultThresholds())
}

func render(t testing.TB, r Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// flameData is the JSON a flame graph's script reads.
type flameData struct {
	Unit  string   `json:"unit"`
	Total float64  `json:"total"`
	Names []string `json:"names"`
	Root  []any    `json:"root"`
}

// countNodes counts the nodes of the nested [name, value, kind, [children]]
// arrays, checking that each child's value is within its parent's.
func countNodes(t *testing.T, n []any) int {
	t.Helper()
	count := 1
	if len(n) < 3 {
		t.Fatalf("node %v: want [name, value, kind, ...]", n)
	}
	if len(n) == 4 {
		var sum float64
		for _, c := range n[3].([]any) {
			cn := c.([]any)
			sum += cn[1].(float64)
			count += countNodes(t, cn)
		}
		if sum > n[1].(float64) {
			t.Errorf("children of node %v sum to %v, over its value %v", n[0], sum, n[1])
		}
	}
	return count
}

// page is a parsed report, with the parts the tests look at.
type parsedPage struct {
	doc     *html.Node
	verdict *html.Node
	flames  map[string]flameData // by data-kind
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

var external = regexp.MustCompile(`(?i)^\s*(https?:)?//`)

// parse parses a page and checks what every page must be: valid HTML,
// nothing loaded from elsewhere, one verdict headline.
func parse(t *testing.T, b []byte) parsedPage {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	p := parsedPage{doc: doc, flames: map[string]flameData{}}
	var walk func(*html.Node, *html.Node)
	walk = func(n, flame *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch strings.ToLower(a.Key) {
				case "src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "data", "background":
					if external.MatchString(a.Val) {
						t.Errorf("<%s %s=%q> loads from the network", n.Data, a.Key, a.Val)
					}
				}
			}
			switch n.Data {
			case "link":
				t.Errorf("<link> in a self-contained page: %v", n.Attr)
			case "script":
				if src, ok := attr(n, "src"); ok {
					t.Errorf("<script src=%q> in a self-contained page", src)
				}
				if typ, _ := attr(n, "type"); typ == "application/json" && flame != nil {
					kind, _ := attr(flame, "data-kind")
					var d flameData
					if err := json.Unmarshal([]byte(text(n)), &d); err != nil {
						t.Errorf("flame graph %s: its JSON does not parse: %v", kind, err)
					}
					p.flames[kind] = d
				}
			case "style":
				if css := text(n); regexp.MustCompile(`(?i)@import|url\(`).MatchString(css) {
					t.Errorf("the stylesheet imports or loads something")
				}
			}
			if id, _ := attr(n, "id"); id == "verdict" {
				if p.verdict != nil {
					t.Errorf("two elements with id=verdict")
				}
				p.verdict = n
			}
			if class, _ := attr(n, "class"); strings.Contains(" "+class+" ", " flamegraph ") {
				flame = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, flame)
		}
	}
	walk(doc, nil)
	if p.verdict == nil {
		t.Fatalf("no element with id=verdict")
	}
	return p
}

func TestWriteRecorded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class verdict.Class
		// cpu and offcpu are whether the observation has on-CPU and
		// off-CPU samples to draw; goWaits whether it has Go mutex, block
		// and goroutine profiles.
		cpu, offcpu, goWaits bool
		// want are strings the page must show.
		want []string
	}{
		{"cpu-hash", verdict.ClassCPU, true, true, false, []string{"sha256.blockSHANI", "run queue", "host.cpu"}},
		{"io-fsync", verdict.ClassIO, true, true, false, []string{"wait.disk", "block I/O", "host.disk."}},
		{"contention-go-mutex", verdict.ClassContention, true, true, true, []string{"process.cpu", "go.heap.*",
			"Go mutex contention", "Go blocking", "A delta over the window of 5.01s: goroutines waited", "waiting on a lock"}},
		{"none-sleep", verdict.ClassNone, false, true, false, []string{"Missing", "has no samples: the target did not run on a CPU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, v := load(t, tc.name)
			b := render(t, Report{Observation: o, Verdict: v})
			t.Logf("%s: %d bytes", tc.name, len(b))
			p := parse(t, b)
			if got, _ := attr(p.verdict, "data-class"); got != string(tc.class) {
				t.Errorf("verdict data-class = %q, want %q", got, tc.class)
			}
			if head := text(p.verdict); !strings.Contains(head, strings.ToUpper(string(tc.class))) {
				t.Errorf("verdict headline %q does not say %s", head, strings.ToUpper(string(tc.class)))
			}
			if cpu, ok := p.flames["cpu"]; ok != tc.cpu {
				t.Errorf("cpu flame graph present = %v, want %v", ok, tc.cpu)
			} else if ok {
				if n := countNodes(t, cpu.Root); n < 5 {
					t.Errorf("cpu flame graph has %d nodes, want at least 5", n)
				}
				if cpu.Unit != "nanoseconds" || cpu.Total <= 0 {
					t.Errorf("cpu flame graph: unit %q total %v, want nanoseconds and a positive total", cpu.Unit, cpu.Total)
				}
			}
			if off, ok := p.flames["offcpu"]; ok != tc.offcpu {
				t.Errorf("offcpu flame graph present = %v, want %v", ok, tc.offcpu)
			} else if ok {
				if n := countNodes(t, off.Root); n < 5 {
					t.Errorf("offcpu flame graph has %d nodes, want at least 5", n)
				}
				if !hasPrefixName(off.Names, "state: ") {
					t.Errorf("offcpu flame graph has no state frames: %v", off.Names[:min(len(off.Names), 10)])
				}
			}
			for _, kind := range []string{"mutex", "block"} {
				g, ok := p.flames[kind]
				if ok != tc.goWaits {
					t.Errorf("%s flame graph present = %v, want %v", kind, ok, tc.goWaits)
					continue
				}
				if !ok {
					continue
				}
				if n := countNodes(t, g.Root); n < 3 {
					t.Errorf("%s flame graph has %d nodes, want at least 3", kind, n)
				}
				if g.Unit != "nanoseconds" || g.Total <= 0 {
					t.Errorf("%s flame graph: unit %q total %v, want the delay in nanoseconds", kind, g.Unit, g.Total)
				}
				if !hasName(g.Names, "main.contend.func1") && !hasName(g.Names, "sync.(*Mutex).Lock") {
					t.Errorf("%s flame graph lacks the contended lock's frames: %v", kind, g.Names)
				}
			}
			if got := bytes.Contains(b, []byte(`<section id="goroutines"`)); got != tc.goWaits {
				t.Errorf("goroutine table present = %v, want %v", got, tc.goWaits)
			}
			page := text(p.doc)
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("the page does not show %q", w)
				}
			}
			for _, s := range []string{"Priorities", "Where the time went", "Flame graphs", "Metrics over the window", "USE", "Evidence"} {
				if !strings.Contains(page, s) {
					t.Errorf("the page has no %q section", s)
				}
			}
			if n := bytes.Count(b, []byte(`<figure class="chart">`)); n == 0 || n > maxCharts {
				t.Errorf("%d charts, want 1..%d", n, maxCharts)
			}
		})
	}
}

func hasName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func hasPrefixName(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// TestSectionOrder checks the page keeps the order the brief of a
// diagnosis reads in: the answer, what to do, then why.
func TestSectionOrder(t *testing.T) {
	o, v := load(t, "cpu-hash")
	v.Findings = []verdict.Finding{{Kind: "leak", Signal: "process.memory.rss", Text: "grows"}}
	goObs, _ := load(t, "contention-go-mutex")
	o.Profiles = append(o.Profiles, goObs.ProfilesOf(observation.KindGoroutine)...)
	b := string(render(t, Report{Observation: o, Verdict: v, Processes: []Process{{PID: 1, Comm: "x", Verdict: v}}}))
	last := -1
	for _, id := range []string{"verdict", "priorities", "breakdown", "flamegraphs", "goroutines", "charts", "use", "latency", "evidence", "findings", "processes", "missing"} {
		i := strings.Index(b, `<section id="`+id+`"`)
		if i < 0 {
			t.Errorf("no section %s", id)
			continue
		}
		if i < last {
			t.Errorf("section %s is out of order", id)
		}
		last = i
	}
}

func TestEscaping(t *testing.T) {
	o, v := load(t, "cpu-hash")
	evil := `</script><script>alert(1)</script><img src="https://example.com/x.png">`
	v.Summary = evil
	v.Priorities = append(v.Priorities, verdict.Priority{Rank: 9, Class: verdict.ClassCPU, Name: evil, Why: evil})
	v.Missing = append(v.Missing, verdict.Gap{Signal: evil, Reason: evil})
	// A function named to break out of the flame graph's JSON.
	cpu := o.ProfilesOf(observation.KindCPU)[0].Profile
	cpu.Function[0].Name = evil
	b := render(t, Report{Observation: o, Verdict: v, Processes: []Process{{PID: 7, Comm: evil}}})
	p := parse(t, b)
	if bytes.Contains(b, []byte("<script>alert")) || bytes.Contains(b, []byte(`<img src="https:`)) {
		t.Errorf("a name got into the page unescaped")
	}
	if !strings.Contains(text(p.doc), evil) {
		t.Errorf("the escaped text does not read back as it was")
	}
	if !hasPrefixName(p.flames["cpu"].Names, "</script>") {
		t.Errorf("the flame graph lost the function's name")
	}
}

func TestHostProcesses(t *testing.T) {
	o, v := load(t, "io-fsync")
	_, pv := load(t, "cpu-hash")
	b := render(t, Report{Observation: o, Verdict: v, Processes: []Process{
		{PID: 42, Comm: "hasher", Impact: 0.61, Load: 1.02, Verdict: pv},
		{PID: 43, Comm: "idle", Impact: 0.01, Load: 0.02},
	}})
	page := text(parse(t, b).doc)
	for _, w := range []string{"hasher", "61%", "1.02", "sha256.blockSHANI", "not judged"} {
		if !strings.Contains(page, w) {
			t.Errorf("the processes table does not show %q", w)
		}
	}
}

func TestWriteDegraded(t *testing.T) {
	if err := Write(&bytes.Buffer{}, Report{}); !errors.Is(err, ErrNoVerdict) {
		t.Errorf("Write without a verdict: %v, want ErrNoVerdict", err)
	}
	// No observation: a page all the same, saying what is absent.
	o := &observation.Observation{Missing: []observation.Missing{{Signal: "ebpf", Reason: "no CAP_BPF"}}}
	v := verdict.Judge(o, verdict.DefaultThresholds())
	for _, r := range []Report{{Verdict: &verdict.Verdict{}}, {Observation: o, Verdict: v}} {
		b := render(t, r)
		p := parse(t, b)
		if got, _ := attr(p.verdict, "data-class"); got != "none" {
			t.Errorf("empty verdict: data-class %q, want none", got)
		}
		if len(p.flames) != 0 {
			t.Errorf("flame graphs without profiles: %v", p.flames)
		}
		if !strings.Contains(text(p.doc), "was not collected") {
			t.Errorf("the page does not say the profiles were not collected")
		}
	}
	b := render(t, Report{Observation: o, Verdict: v})
	if !strings.Contains(text(parse(t, b).doc), "no CAP_BPF") {
		t.Errorf("the page does not say why the profiles are absent")
	}
}

// synthetic makes a CPU profile of n distinct stacks under main.main,
// stack i worth weight(i) nanoseconds.
func synthetic(n int, weight func(i int) int64) *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DefaultSampleType: "cpu",
	}
	fn := func(name string) *profile.Location {
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
		p.Location = append(p.Location, l)
		return l
	}
	mainLoc := fn("main.main")
	for i := range n {
		mid := fn("main.worker" + string(rune('A'+i%26)))
		leaf := fn("main.leaf" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i%10)) + string(rune('a'+i/260%26)) + string(rune('a'+i/6760%26)))
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{leaf, mid, mainLoc}, Value: []int64{1, weight(i)}})
	}
	return p
}

func TestFlamePrune(t *testing.T) {
	// One heavy stack and 50,000 light ones, each under 0.1% of the
	// total: the light leaves go, their time stays in their callers.
	const n = 50000
	p := synthetic(n, func(i int) int64 {
		if i == 0 {
			return n * 100
		}
		return 100
	})
	tree, unit := buildFlame([]observation.Profile{{Kind: "cpu", Source: "ebpf", Profile: p}}, "cpu")
	if unit != "nanoseconds" {
		t.Errorf("unit %q, want nanoseconds", unit)
	}
	total := tree.root.value
	if want := float64(n*100 + (n-1)*100); total != want {
		t.Fatalf("root value %v, want %v", total, want)
	}
	before := tree.nodes
	kept, dropped, droppedValue := tree.prune(minFrameShare, maxFrames)
	if kept+dropped != before {
		t.Errorf("kept %d + dropped %d != %d nodes", kept, dropped, before)
	}
	// root, main.main, 26 workers (each over 0.1%), the heavy leaf.
	if kept != 29 {
		t.Errorf("kept %d frames, want 29", kept)
	}
	if want := float64((n - 1) * 100); droppedValue != want {
		t.Errorf("dropped value %v, want %v", droppedValue, want)
	}
	if tree.root.value != total {
		t.Errorf("pruning changed the total")
	}
	var d flameData
	if err := json.Unmarshal(tree.json(unit), &d); err != nil {
		t.Fatalf("pruned JSON: %v", err)
	}
	if got := countNodes(t, d.Root); got != kept {
		t.Errorf("JSON has %d nodes, want %d", got, kept)
	}
	if len(d.Names) != kept {
		t.Errorf("JSON has %d names, want %d: pruned frames' names are shipped", len(d.Names), kept)
	}
}

func TestFlameCap(t *testing.T) {
	// 30,000 stacks of equal weight, each 1/30,000 of the total: with no
	// share floor, only the cap bounds the tree.
	const n = 30000
	tree, unit := buildFlame([]observation.Profile{{Kind: "cpu", Source: "ebpf", Profile: synthetic(n, func(int) int64 { return 10 })}}, "cpu")
	kept, dropped, droppedValue := tree.prune(0, 1000)
	if kept != 1000 {
		t.Errorf("kept %d frames, want the cap of 1000", kept)
	}
	if dropped != tree.nodes-1000 || droppedValue <= 0 {
		t.Errorf("dropped %d frames worth %v, want %d frames and some time", dropped, droppedValue, tree.nodes-1000)
	}
	// The largest survive: main.main and all 26 workers.
	var d flameData
	if err := json.Unmarshal(tree.json(unit), &d); err != nil {
		t.Fatal(err)
	}
	if got := countNodes(t, d.Root); got != 1000 {
		t.Errorf("JSON has %d nodes, want 1000", got)
	}
	mainNode := d.Root[3].([]any)[0].([]any)
	if len(mainNode[3].([]any)) != 26 {
		t.Errorf("main.main kept %d workers, want 26", len(mainNode[3].([]any)))
	}
}

func TestFlameStatesAndProcesses(t *testing.T) {
	p := synthetic(3, func(int) int64 { return 1e6 })
	p.SampleType = []*profile.ValueType{{Type: "off_cpu", Unit: "nanoseconds"}, {Type: "waits", Unit: "count"}}
	p.DefaultSampleType = ""
	for i, s := range p.Sample {
		s.Value = []int64{1e6, 1}
		s.Label = map[string][]string{"state": {"DSR"[i : i+1]}, "comm": {[]string{"a", "b", "b"}[i]}}
	}
	tree, _ := buildFlame([]observation.Profile{{Kind: "offcpu", Source: "ebpf", Profile: p}}, "offcpu")
	var names []string
	for _, c := range tree.root.children {
		names = append(names, tree.names[c.name])
		for _, cc := range c.children {
			names = append(names, tree.names[cc.name])
		}
	}
	got := strings.Join(names, "|")
	for _, w := range []string{"process: a", "process: b", "state: D (uninterruptible: disk, faults)", "state: R (runnable: waiting for a CPU)"} {
		if !strings.Contains(got, w) {
			t.Errorf("top frames %q lack %q", got, w)
		}
	}
}

// TestGoWaitGraphs checks the graphs of Go's mutex and block profiles:
// drawn after the threads' graphs, captioned with the span they cover,
// the delay drawn or else the contentions, and never an empty one.
func TestGoWaitGraphs(t *testing.T) {
	kinds := func(gs []flameGraph) (out []string) {
		for _, g := range gs {
			if g.Absent == "" {
				out = append(out, string(g.Kind))
			}
		}
		return out
	}
	o, v := load(t, "contention-go-mutex")
	gs := flameGraphs(o, v)
	if got := strings.Join(kinds(gs), ","); got != "cpu,offcpu,mutex,block" {
		t.Fatalf("flame graphs %s, want cpu,offcpu,mutex,block", got)
	}
	mutex := gs[2]
	if mutex.Title != "Go mutex contention" || mutex.Source != "pprof" || !strings.HasPrefix(mutex.Coverage, "A delta over the window") {
		t.Errorf("mutex graph %q from %q covering %q", mutex.Title, mutex.Source, mutex.Coverage)
	}
	if !strings.Contains(mutex.Caption, "unlocked") {
		t.Errorf("mutex caption %q does not say the delay is charged to the unlocker", mutex.Caption)
	}

	// A cumulative snapshot says it covers the process's life.
	o, v = load(t, "contention-go-mutex")
	for i := range o.Profiles {
		if o.Profiles[i].Kind == observation.KindMutex {
			o.Profiles[i].Labels = map[string]string{"mode": "snapshot"}
		}
	}
	gs = flameGraphs(o, v)
	if c := gs[2].Coverage; !strings.Contains(c, "whole life") {
		t.Errorf("snapshot coverage %q does not say it is cumulative", c)
	}

	// Without the delay, the contentions are drawn.
	for _, p := range o.ProfilesOf(observation.KindMutex) {
		p.Profile.SampleType = p.Profile.SampleType[:1] // contentions/count
		for _, s := range p.Profile.Sample {
			s.Value = s.Value[:1]
		}
	}
	gs = flameGraphs(o, v)
	if g := gs[2]; g.Unit != "count" || g.Total != 219030+5 {
		t.Errorf("mutex graph without delay: unit %q total %v, want the 219035 contentions", g.Unit, g.Total)
	}

	// Empty or absent profiles draw nothing and say nothing: the
	// verdict's Missing tells why a Go program lacks them.
	for _, p := range o.ProfilesOf(observation.KindMutex) {
		p.Profile.Sample = nil
	}
	var kept []observation.Profile
	for _, p := range o.Profiles {
		if p.Kind != observation.KindBlock {
			kept = append(kept, p)
		}
	}
	o.Profiles = kept
	gs = flameGraphs(o, v)
	if got := strings.Join(kinds(gs), ","); got != "cpu,offcpu" || len(gs) != 2 {
		t.Errorf("flame graphs %s (%d blocks), want cpu,offcpu only", got, len(gs))
	}
	b := render(t, Report{Observation: o, Verdict: v})
	parse(t, b)
	if bytes.Contains(b, []byte("<h3>Go mutex")) || bytes.Contains(b, []byte("<h3>Go blocking")) {
		t.Errorf("the page heads a Go graph it does not draw")
	}

	// A profile pushed without saying block or mutex is drawn as such.
	o, v = load(t, "contention-go-mutex")
	for i := range o.Profiles {
		if o.Profiles[i].Kind == observation.KindBlock {
			o.Profiles[i].Kind, o.Profiles[i].Source, o.Profiles[i].Labels = observation.KindContention, "ingest", nil
		}
	}
	gs = flameGraphs(o, v)
	if got := strings.Join(kinds(gs), ","); got != "cpu,offcpu,mutex,contention" {
		t.Errorf("flame graphs %s, want cpu,offcpu,mutex,contention", got)
	} else if gs[3].Coverage != "" {
		t.Errorf("a profile without a mode label got coverage %q", gs[3].Coverage)
	}
}

func TestGoroutineTable(t *testing.T) {
	o, _ := load(t, "contention-go-mutex")
	g := goroutines(o)
	if g == nil {
		t.Fatal("no goroutine table")
	}
	if g.Total != 70 || g.Source != "pprof" || g.When != "at the window's end" {
		t.Errorf("table of %d goroutines from %q %q, want 70 from pprof at the window's end", g.Total, g.Source, g.When)
	}
	top := g.Rows[0]
	if top.Count != 62 || top.State != "waiting on a lock" || top.Where != "main.contend.func1" || top.Line != "main.go:384" {
		t.Errorf("top row %+v, want 62 waiting on a lock at main.contend.func1 main.go:384", top)
	}
	if !strings.Contains(top.Stack, "sync.(*Mutex).Lock") {
		t.Errorf("top row's stack %q lacks the lock", top.Stack)
	}
	states := map[string]int{}
	for _, r := range g.Rows {
		states[r.State] += r.Count
	}
	for state, n := range map[string]int{"waiting on a socket or file (netpoll)": 3, "waiting on a WaitGroup": 1, "unknown (no stack)": 1} {
		if states[state] != n {
			t.Errorf("%d goroutines %s, want %d (rows %v)", states[state], state, n, states)
		}
	}

	// Many distinct stacks: the largest groups, and a count of the rest.
	p := synthetic(30, func(i int) int64 { return int64(i + 1) })
	p.SampleType, p.DefaultSampleType = []*profile.ValueType{{Type: "goroutine", Unit: "count"}}, ""
	for _, s := range p.Sample {
		s.Value = s.Value[1:]
	}
	g = goroutines(&observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindGoroutine, Source: "pprof", Profile: p}}})
	if len(g.Rows) != maxGoroutineRows || g.MoreGroups != 30-maxGoroutineRows || g.Rows[0].Count != 30 {
		t.Errorf("%d rows (first %d) and %d more groups, want %d rows from 30 and %d more", len(g.Rows), g.Rows[0].Count, g.MoreGroups, maxGoroutineRows, 30-maxGoroutineRows)
	}
	if g.Rows[0].State != "running or runnable" {
		t.Errorf("a stack without gopark is %q, want running or runnable", g.Rows[0].State)
	}

	if g := goroutines(&observation.Observation{}); g != nil {
		t.Errorf("a table without a goroutine profile: %+v", g)
	}
}

// TestWriteBounded renders a busy host's worth of stacks: the page stays
// small and says what it pruned.
func TestWriteBounded(t *testing.T) {
	o, v := load(t, "cpu-hash")
	// 100,000 stacks each too thin to draw, and 500 deep ones (40
	// functions each) thick enough: 20,000 frames, twice the cap.
	const n = 100000
	busy := synthetic(n, func(i int) int64 { return 10 })
	var thin int64 = n * 10
	for i := range 500 {
		var locs []*profile.Location
		for d := range 40 {
			f := &profile.Function{ID: uint64(len(busy.Function) + 1), Name: fmt.Sprintf("pkg%d.deep%d", i, d)}
			l := &profile.Location{ID: uint64(len(busy.Location) + 1), Line: []profile.Line{{Function: f}}}
			busy.Function, busy.Location = append(busy.Function, f), append(busy.Location, l)
			locs = append([]*profile.Location{l}, locs...)
		}
		busy.Sample = append(busy.Sample, &profile.Sample{Location: locs, Value: []int64{1, thin / 100}})
	}
	for i, p := range o.Profiles {
		if p.Kind == observation.KindCPU {
			o.Profiles[i].Profile = busy
		}
	}
	b := render(t, Report{Observation: o, Verdict: v})
	if len(b) > 2<<20 {
		t.Errorf("the page of %d stacks is %d bytes, want under 2 MiB", n, len(b))
	}
	p := parse(t, b)
	if got := countNodes(t, p.flames["cpu"].Root); got > maxFrames {
		t.Errorf("%d frames, over the cap of %d", got, maxFrames)
	}
	if !strings.Contains(text(p.doc), "frames are not drawn") {
		t.Errorf("the page does not say what it pruned")
	}
	if got := countNodes(t, p.flames["cpu"].Root); got != maxFrames {
		t.Errorf("%d frames drawn, want the cap of %d", got, maxFrames)
	}
	t.Logf("%d stacks: %d bytes, %d frames", n+500, len(b), countNodes(t, p.flames["cpu"].Root))
}

func TestCharts(t *testing.T) {
	o, _ := load(t, "contention-go-mutex")
	set := charts(o)
	if len(set.Charts) == 0 || len(set.Charts) > maxCharts {
		t.Fatalf("%d charts, want 1..%d", len(set.Charts), maxCharts)
	}
	if set.Charts[0].Title != "process.cpu" {
		t.Errorf("first chart %q, want the target's own process.cpu", set.Charts[0].Title)
	}
	for _, c := range set.Charts {
		if len(c.Lines) == 0 || len(c.Lines) > maxLines {
			t.Errorf("chart %s has %d lines", c.Title, len(c.Lines))
		}
		for _, l := range c.Lines {
			if l.Path == "" || !strings.HasPrefix(l.Path, "M") {
				t.Errorf("chart %s line %s has path %q", c.Title, l.Label, l.Path)
			}
		}
		if c.Title == "host.cpu" {
			for _, l := range c.Lines {
				if strings.Contains(l.Label, "cpu=") {
					t.Errorf("host.cpu draws a per-CPU line %q beside the total", l.Label)
				}
			}
		}
	}
	// Many lines: the cap holds and says what it hid.
	o2 := &observation.Observation{Meta: observation.Meta{Start: time.Unix(0, 0), Duration: 10 * time.Second}}
	for i := range 20 {
		s := observation.Series{Name: "host.disk.ops", Unit: "ops/s", Labels: map[string]string{"device": string(rune('a' + i))}}
		for j := range 1000 {
			s.Points = append(s.Points, observation.Point{Time: time.Unix(0, int64(j)*1e7), Value: float64(i * j)})
		}
		o2.Series = append(o2.Series, s)
	}
	set = charts(o2)
	if len(set.Charts) != 1 || len(set.Charts[0].Lines) != maxLines || set.Charts[0].Hidden != 20-maxLines-1 {
		t.Fatalf("charts %+v: want one chart of %d lines hiding %d (and one flat line)", len(set.Charts), maxLines, 20-maxLines-1)
	}
	if set.Flat != 1 {
		t.Errorf("flat %d, want the one all-zero line", set.Flat)
	}
	if n := strings.Count(set.Charts[0].Lines[0].Path, "L") + 1; n > maxPointsPerLine {
		t.Errorf("a line of 1000 points drew %d, over %d", n, maxPointsPerLine)
	}
}

func TestNoNetworkInAssets(t *testing.T) {
	for _, f := range []string{"assets/report.css", "assets/report.js", "assets/report.html.tmpl"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?i)https?://|@import|url\(|fetch\(|XMLHttpRequest`).Match(b) {
			t.Errorf("%s refers to the network", f)
		}
	}
}

// BenchmarkWrite renders the largest recorded observation.
func BenchmarkWrite(b *testing.B) {
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		b.Fatal(err)
	}
	largest, size := "", int64(-1)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var n int64
		filepath.Walk(filepath.Join(fixtures, e.Name()), func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				n += fi.Size()
			}
			return nil
		})
		if n > size {
			largest, size = e.Name(), n
		}
	}
	o, v := load(b, largest)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, Report{Observation: o, Verdict: v}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "html-bytes")
	b.Logf("%s: %d bytes of HTML", largest, buf.Len())
}

// TestThreadStateGraph: a process's thread states sampled without eBPF
// are drawn, each sleep under its state and system call (a mutex's
// waiters in futex, in futex_do_wait); an observation without them draws
// no such graph and says nothing of it.
func TestThreadStateGraph(t *testing.T) {
	o, v := load(t, "contention-c-mutex")
	var g *flameGraph
	for _, fg := range flameGraphs(o, v) {
		if fg.Kind == observation.KindThreadState {
			g = &fg
		}
	}
	if g == nil || g.Absent != "" || g.Total == 0 {
		t.Fatalf("thread-state graph %+v", g)
	}
	for _, want := range []string{"state: S (sleeping)", "syscall: futex", "futex_do_wait", "state: R (running or runnable)"} {
		if !strings.Contains(string(g.Data), want) {
			t.Errorf("thread-state graph lacks %q", want)
		}
	}
	o, v = load(t, "cpu-hash") // recorded before the sampler
	for _, fg := range flameGraphs(o, v) {
		if fg.Kind == observation.KindThreadState {
			t.Errorf("a thread-state graph without the profile: %+v", fg)
		}
	}
}
