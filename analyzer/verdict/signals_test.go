package verdict

import (
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/doccheck"
)

// TestVocabularyDocumented: docs/analysis.md's tables of the verdict's
// signals, priority kinds, breakdown sources and finding kinds name what
// signals.go lists, and signals.go lists every constant it declares.
func TestVocabularyDocumented(t *testing.T) {
	const doc = "../../docs/analysis.md"
	doccheck.Listed(t, "signals.go", "", "Signals", "PriorityKinds", "BreakdownSources", "FindingKinds")
	tables := doccheck.Tables(t, doc, "5. Reports")
	for _, c := range []struct {
		what string
		list []string
	}{
		{"signal", Signals()},
		{"priority kind", PriorityKinds()},
		{"breakdown source", BreakdownSources()},
		{"finding kind", FindingKinds()},
	} {
		listed := map[string]string{}
		for _, n := range c.list {
			if _, dup := listed[n]; dup {
				t.Errorf("%s %s listed twice", c.what, n)
			}
			listed[n] = ""
		}
		doccheck.Agree(t, c.what, doc, doccheck.Documented(t, tables, c.what), listed)
	}
}
