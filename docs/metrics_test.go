package docs

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricName is a metric the agent exports, as a Go string literal in its
// code or in backquotes in docs/agent.md.
var (
	metricInCode = regexp.MustCompile(`"(perfhound_[a-z_]+)"`)
	metricInDocs = regexp.MustCompile("`(perfhound_[a-z_]+)`")
)

// TestAgentMetricsDocumented holds docs/agent.md's metric table to the
// agent's code both ways: every metric name registered under agent/ is
// documented, and every documented one exists.
func TestAgentMetricsDocumented(t *testing.T) {
	inCode := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("..", "agent"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		for _, m := range metricInCode.FindAllStringSubmatch(string(src), -1) {
			inCode[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("agent.md")
	if err != nil {
		t.Fatal(err)
	}
	inDocs := map[string]bool{}
	for _, m := range metricInDocs.FindAllStringSubmatch(string(doc), -1) {
		inDocs[m[1]] = true
	}
	if len(inCode) < 10 {
		t.Fatalf("found %d metric names under agent/: the pattern no longer matches how they are declared", len(inCode))
	}
	for _, name := range slices.Sorted(maps.Keys(inCode)) {
		if !inDocs[name] {
			t.Errorf("%s is exported by the agent but not in docs/agent.md", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inDocs)) {
		if !inCode[name] {
			t.Errorf("docs/agent.md documents %s, which the agent does not export", name)
		}
	}
}
