package obsdiff

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/golden"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden renders real comparisons in every format and checks them
// against testdata/BASE_vs_HEAD.{txt,md,json}; regenerate with
// go test ./analyzer/obsdiff -run Golden -update.
func TestGolden(t *testing.T) {
	formats := []struct {
		ext    string
		format report.Format
	}{{"txt", report.Text}, {"md", report.Markdown}, {"json", report.JSON}}
	for _, pair := range [][2]string{
		{"cpu-hash", "io-fsync"},
		{"contention-go-mutex", "contention-go-mutex"},
		{"memory-leak", "contention-go-mutex"},
	} {
		d := diff(t, pair[0], pair[1], nil)
		for _, f := range formats {
			name := pair[0] + "_vs_" + pair[1] + "." + f.ext
			t.Run(name, func(t *testing.T) {
				var got bytes.Buffer
				if err := d.Render(&got, f.format, RenderOptions{}); err != nil {
					t.Fatal(err)
				}
				golden.Check(t, filepath.Join("testdata", name), got.Bytes(), *update, "go test ./analyzer/obsdiff -run Golden -update")
			})
		}
	}
}

// The JSON's stable paths, and lists that are [] rather than null.
func TestJSON(t *testing.T) {
	d := diff(t, "cpu-hash", "cpu-hash", nil)
	var buf bytes.Buffer
	if err := d.Render(&buf, report.JSON, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != Schema || doc["failed"] != false {
		t.Errorf("schema %v, failed %v", doc["schema"], doc["failed"])
	}
	if c := doc["class"].(map[string]any); c["base"] != "cpu" || c["head"] != "cpu" || c["change"] != "unchanged" {
		t.Errorf("class %v", c)
	}
	for _, k := range []string{"load", "profiles", "resources", "latency", "priorities", "findings", "missing", "regressions", "improvements", "warnings"} {
		if _, ok := doc[k].([]any); !ok {
			t.Errorf("%s is %v, want a list", k, doc[k])
		}
	}
}

func TestTextColor(t *testing.T) {
	d := diff(t, "cpu-hash", "io-fsync", nil)
	var plain, color bytes.Buffer
	if err := d.Render(&plain, report.Text, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Render(&color, report.Text, RenderOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[31m") {
		t.Error("colour: want ANSI codes only when asked")
	}
}

// TestDescribe checks that a side names its target by what was run, not
// by a PID that is another in every run, and the PID alone when nothing
// else names it.
func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		t    observation.Target
		want string
	}{
		{observation.Target{Kind: observation.TargetHost}, "the host"},
		{observation.Target{Kind: observation.TargetCommand, PID: 42, Command: []string{"./server", "-p", "80"}}, "command ./server -p 80"},
		{observation.Target{Kind: observation.TargetURL, PID: 42, URL: "http://127.0.0.1:6060"}, "http://127.0.0.1:6060"},
		{observation.Target{Kind: observation.TargetApp, PID: 42, App: "shop"}, "app shop"},
		{observation.Target{Kind: observation.TargetProcess, PID: 42}, "process 42"},
		{observation.Target{}, ""},
	} {
		if got := describe(Side{Target: c.t}); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}
