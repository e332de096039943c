package verdict

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"

	"github.com/perfhound/perfhound/analyzer/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/")

const observationsDir = "../../fixtures/observations"

// renderFixture is a recorded observation with the class its manifest
// says it is bound by.
type renderFixture struct {
	name  string
	class Class
	obs   *observation.Observation
}

// renderFixtures loads every observation the manifest lists, by name.
func renderFixtures(t *testing.T) []renderFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(observationsDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]struct {
		Class Class `json:"class"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []renderFixture
	for name, want := range m {
		o, err := observation.Load(filepath.Join(observationsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, renderFixture{name, want.Class, o})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

var renderFormats = []struct {
	ext   string
	write func(io.Writer, *Verdict) error
}{
	{"txt", func(w io.Writer, v *Verdict) error { return WriteText(w, v, TextOptions{}) }},
	{"md", WriteMarkdown},
	{"json", writeJSON},
}

// writeJSON writes v as the golden files hold it, in the verdict's JSON
// conventions (EncodeJSON, ForJSON):
//
//	{"schema": "perfhound.verdict/v1", "verdict": {...}}
//
// diagnosis.Report.WriteJSON embeds the same verdict in its document.
func writeJSON(w io.Writer, v *Verdict) error {
	return EncodeJSON(w, struct {
		Schema  string   `json:"schema"`
		Verdict *Verdict `json:"verdict"`
	}{"perfhound.verdict/v1", ForJSON(v)})
}

// TestGolden renders the verdict of every recorded observation in every
// format and checks it against testdata/golden/NAME.{txt,md,json};
// regenerate with go test ./analyzer/verdict -run Golden -update.
func TestGolden(t *testing.T) {
	for _, fx := range renderFixtures(t) {
		v := Judge(fx.obs, DefaultThresholds())
		for _, f := range renderFormats {
			t.Run(fx.name+"."+f.ext, func(t *testing.T) {
				var got bytes.Buffer
				if err := f.write(&got, v); err != nil {
					t.Fatal(err)
				}
				checkGolden(t, filepath.Join("testdata", "golden", fx.name+"."+f.ext), got.Bytes())
			})
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	golden.Check(t, path, got, *update, "go test ./analyzer/verdict -run Golden -update")
}

// TestJSONSchema: the JSON of every recorded verdict parses back, names
// its schema, and has the manifest's class at .verdict.class.
func TestJSONSchema(t *testing.T) {
	for _, fx := range renderFixtures(t) {
		var buf bytes.Buffer
		if err := writeJSON(&buf, Judge(fx.obs, DefaultThresholds())); err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		var doc struct {
			Schema  string `json:"schema"`
			Verdict struct {
				Class Class `json:"class"`
			} `json:"verdict"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		if doc.Schema != "perfhound.verdict/v1" {
			t.Errorf("%s: .schema = %q, want perfhound.verdict/v1", fx.name, doc.Schema)
		}
		if doc.Verdict.Class != fx.class {
			t.Errorf("%s: .verdict.class = %q, want %q", fx.name, doc.Verdict.Class, fx.class)
		}
		// The whole verdict reads back into the type.
		var back struct{ Verdict Verdict }
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Errorf("%s: the verdict does not read back: %v", fx.name, err)
		}
	}
}

// TestRenderEmpty: a verdict of nothing, and no verdict at all, render in
// every format without a panic, and the text and markdown say what was
// missing.
func TestRenderEmpty(t *testing.T) {
	verdicts := map[string]*Verdict{
		"judged empty":   Judge(&observation.Observation{}, DefaultThresholds()),
		"judged 5s":      Judge(&observation.Observation{Meta: observation.Meta{Duration: 5 * time.Second, Target: observation.Target{Kind: observation.TargetProcess, PID: 42}}}, DefaultThresholds()),
		"zero verdict":   {},
		"nil verdict":    nil,
		"missing only":   {Missing: []Gap{{Signal: "ebpf", Reason: "not root"}}},
		"nil USE metric": {USE: []Resource{{Resource: "cpu", Status: "ok"}}, Evidence: []Evidence{{Signal: "x", Text: "a | b"}}},
	}
	for name, v := range verdicts {
		for _, f := range renderFormats {
			var buf bytes.Buffer
			if err := f.write(&buf, v); err != nil {
				t.Errorf("%s %s: %v", name, f.ext, err)
				continue
			}
			out := buf.String()
			if v != nil && len(v.Missing) > 0 && f.ext != "json" && !strings.Contains(out, "Missing") {
				t.Errorf("%s %s: no Missing section:\n%s", name, f.ext, out)
			}
			if f.ext == "json" && !json.Valid(buf.Bytes()) {
				t.Errorf("%s: invalid JSON:\n%s", name, out)
			}
		}
	}
	// Judged with nothing to judge, the verdict has missing signals.
	var buf bytes.Buffer
	if err := WriteText(&buf, verdicts["judged 5s"], TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\nMissing") {
		t.Errorf("an empty observation's report has no Missing section:\n%s", buf.String())
	}
	// An empty verdict's JSON has lists, not nulls.
	buf.Reset()
	if err := writeJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Verdict map[string]any `json:"verdict"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"evidence", "use", "priorities", "load"} {
		if doc.Verdict[k] == nil {
			t.Errorf("empty verdict: .verdict.%s is null", k)
		}
	}
	if doc.Verdict["class"] != "none" {
		t.Errorf("empty verdict: .verdict.class = %v, want none", doc.Verdict["class"])
	}
}

// TestTextColor: colour only when asked for.
func TestTextColor(t *testing.T) {
	v := &Verdict{Class: ClassIO, Confidence: 0.9, USE: []Resource{{Resource: "cpu", Status: "busy"}}}
	var plain, color bytes.Buffer
	if err := WriteText(&plain, v, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&color, v, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("colour without Color:\n%q", plain.String())
	}
	if !strings.Contains(color.String(), "\x1b[") {
		t.Errorf("no colour with Color:\n%q", color.String())
	}
}

func TestRoundJSONNumbers(t *testing.T) {
	in := `{"a":0.123456789,"b":8000000000,"c":-1.5e-7,"d":"0.123456789 \"1.23456\"","e":[1,2.0000001,12345.678]}`
	got, err := roundJSONNumbers([]byte(in), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":0.1235,"b":8000000000,"c":-1.5e-7,"d":"0.123456789 \"1.23456\"","e":[1,2,12350]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
