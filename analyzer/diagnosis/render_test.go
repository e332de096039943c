package diagnosis

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/golden"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/")

// TestGoldenHost renders the report of a host of 15 processes (the
// recorded fixtures' samples under new PIDs, syntheticHost) as text and
// markdown and checks it against testdata/golden/host.{txt,color.txt,md}: the
// verdict of the host, the processes by impact, the brief verdicts of the
// busiest. Regenerate with go test ./analyzer/diagnosis -run Golden
// -update.
func TestGoldenHost(t *testing.T) {
	r := Analyze(syntheticHost(t, 20), DefaultOptions()) // every recorded workload once
	for _, f := range []struct {
		ext   string
		write func(*bytes.Buffer) error
	}{
		{"txt", func(b *bytes.Buffer) error { return r.WriteText(b, verdict.TextOptions{}) }},
		{"color.txt", func(b *bytes.Buffer) error { return r.WriteText(b, verdict.TextOptions{Color: true}) }},
		{"md", func(b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
	} {
		t.Run(f.ext, func(t *testing.T) {
			var got bytes.Buffer
			if err := f.write(&got); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "golden", "host."+f.ext), got.Bytes(), *update,
				"go test ./analyzer/diagnosis -run Golden -update")
		})
	}
}

// TestProcessIsVerdict: the report of a process, not a host, is its
// verdict's report and nothing more, in both media and in colour, for
// every recorded observation.
func TestProcessIsVerdict(t *testing.T) {
	const dir = "../../fixtures/observations"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		o, err := observation.Load(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r := Analyze(o, DefaultOptions())
		for _, color := range []bool{false, true} {
			var got, want bytes.Buffer
			if err := r.WriteText(&got, verdict.TextOptions{Color: color}); err != nil {
				t.Fatal(err)
			}
			if err := verdict.WriteText(&want, r.Verdict, verdict.TextOptions{Color: color}); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s: text (color %v) is not the verdict's:\n%s\nwant\n%s", e.Name(), color, got.String(), want.String())
			}
		}
		var got, want bytes.Buffer
		if err := r.WriteMarkdown(&got); err != nil {
			t.Fatal(err)
		}
		if err := verdict.WriteMarkdown(&want, r.Verdict); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: markdown is not the verdict's:\n%s\nwant\n%s", e.Name(), got.String(), want.String())
		}
	}
}

// TestProcessNamesEscaped: a process names itself (prctl PR_SET_NAME), so
// its name is text from input: escaped for a terminal (a right-to-left
// override shows as \u202e) and for markdown (no HTML, emphasis or cell
// of its own), in the table and in the title of its verdict.
func TestProcessNamesEscaped(t *testing.T) {
	const comm = "<b>_x_|y\u202e"
	r := &Report{Verdict: &verdict.Verdict{Class: verdict.ClassCPU}, Ranked: 1, Processes: []Process{{
		Process: procrank.Process{PID: 7, Comm: comm, Impact: 1, Load: 1, CPU: 1, Source: verdict.BreakdownEBPF},
		Verdict: &verdict.Verdict{Class: verdict.ClassCPU, Priorities: []verdict.Priority{{Rank: 1, Name: "f|`g"}}},
	}}}
	var text, md bytes.Buffer
	if err := r.WriteText(&text, verdict.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "\u202e") {
		t.Errorf("text holds the override:\n%s", text.String())
	}
	for _, want := range []string{"  7    <b>_x_|y\\u202e  100%", "\nProcess 7 (<b>_x_|y\\u202e), 100% of the host's load\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if want := "| 7 | &lt;b>\\_x\\_\\|y\\\\u202e | 100% | 1.00 | 1.00 | cpu | `f\\|'g` |\n"; !strings.Contains(md.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, md.String())
	}
}
