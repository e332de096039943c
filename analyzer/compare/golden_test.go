package compare

import (
	"github.com/perfhound/perfhound/internal/report"

	"bytes"
	"cmp"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/perfhound/perfhound/analyzer/input"

	"github.com/perfhound/perfhound/analyzer/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenPair is a recorded corpus pair (fixtures/record/record.sh): ten
// runs a side of the fixture benchmarks with CPU profiles, the head with
// HashBlocks slowed by 10%.
const goldenPair = "../../fixtures/corpus/HashBlocks-10"

// busyPair is 30 runs a side recorded beside CPU hogs that came and went
// (fixtures/record/record-busy.sh), the head with HashBlocks 5% slower.
const busyPair = "../../fixtures/corpus-busy-30/HashBlocks-05"

// TestGolden renders a real comparison in every format and checks it
// against testdata/<name>.golden; regenerate with go test -update.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		base   string
		head   string
		format report.Format
		opt    func(*Options)
		pair   string // goldenPair if empty
	}{
		{"hashblocks10.text", "base", "head", report.Text, nil, ""},
		{"hashblocks10.markdown", "base", "head", report.Markdown, nil, ""},
		{"hashblocks10.json", "base", "head", report.JSON, nil, ""},
		{"hashblocks10-bench-only.text", "base/run-01.txt", "head/run-01.txt", report.Text, nil, ""},
		{"hashblocks10-one-profile.text", "base/run-01.cpu.pprof", "head/run-01.cpu.pprof", report.Text, nil, ""},
		// Recorded beside CPU hogs: HashBlocks 5% slower, found by its
		// fastest runs.
		{"hashblocks05-busy.text", "base", "head", report.Text, nil, busyPair},
		{"hashblocks05-busy.json", "base", "head", report.JSON, nil, busyPair},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Relative paths keep the golden files independent of the checkout.
			wd, _ := os.Getwd()
			pair := cmp.Or(tc.pair, goldenPair)
			if _, err := os.Stat(pair); err != nil {
				t.Fatalf("corpus pair missing: %v", err)
			}
			t.Chdir(pair)
			base, err := input.Load([]string{tc.base}, input.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			head, err := input.Load([]string{tc.head}, input.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			opt := DefaultOptions
			if tc.opt != nil {
				tc.opt(&opt)
			}
			res, err := Run(base, head, opt)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := res.Render(&got, tc.format, RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join(wd, "testdata", tc.name+".golden"), got.Bytes(), *update, "go test ./analyzer/compare -update")
		})
	}
}
