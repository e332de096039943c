package observation

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docTable is one markdown table of a document: its header cells and rows.
type docTable struct {
	header []string
	rows   [][]string
}

// docTables reads the tables of a markdown document under a "## " heading
// (the whole document when section is ""), up to the next "## " heading.
func docTables(t *testing.T, path, section string) []docTable {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []docTable
		cur    *docTable
		inside = section == ""
	)
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			inside = section == "" || strings.TrimSpace(h) == section
			cur = nil
			continue
		}
		if !inside || !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cur == nil:
			out = append(out, docTable{header: cells})
			cur = &out[len(out)-1]
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the separator row
		default:
			cur.rows = append(cur.rows, cells)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no tables under %q", path, section)
	}
	return out
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// docNames reads the names a table's first cell gives: full dotted names
// in backquotes, and ".x" abbreviations that replace the last part of the
// name before them ("`host.load.load1`, `.load5`").
func docNames(cell string) []string {
	var out []string
	prev := ""
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		n := m[1]
		if strings.HasPrefix(n, ".") && prev != "" {
			n = prev[:strings.LastIndex(prev, ".")] + n
		}
		out = append(out, n)
		prev = n
	}
	return out
}

// column is the index of a table's column by its header, -1 when absent.
func column(tb docTable, header string) int {
	for i, h := range tb.header {
		if h == header {
			return i
		}
	}
	return -1
}

// docUnits reads the units of a row, one per name: a single unit applies
// to every name, a list gives one each ("bytes/s, count/s").
func docUnits(cell string, names int) []string {
	units := strings.Split(cell, ",")
	for i := range units {
		units[i] = strings.TrimSpace(units[i])
	}
	if len(units) == 1 {
		for len(units) < names {
			units = append(units, units[0])
		}
	}
	return units
}

// documented collects a document's names and units from the tables whose
// first header is first.
func documented(t *testing.T, tables []docTable, first string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range tables {
		if tb.header[0] != first {
			continue
		}
		u := column(tb, "unit")
		for _, row := range tb.rows {
			names := docNames(row[0])
			if len(names) == 0 {
				t.Errorf("a %s row names nothing in backquotes: %q", first, row[0])
			}
			var units []string
			if u >= 0 && u < len(row) {
				units = docUnits(row[u], len(names))
				if len(units) != len(names) {
					t.Errorf("%v: %d units %q for %d names", names, len(units), row[u], len(names))
					continue
				}
			}
			for i, n := range names {
				if _, dup := out[n]; dup {
					t.Errorf("%s %s is documented twice", first, n)
				}
				out[n] = ""
				if units != nil {
					out[n] = units[i]
				}
			}
		}
	}
	return out
}

// agree reports every name on one side only, and every unit that differs.
func agree(t *testing.T, what, doc string, documented, catalogued map[string]string) {
	t.Helper()
	var names []string
	for n := range catalogued {
		names = append(names, n)
	}
	for n := range documented {
		if _, ok := catalogued[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d, inDoc := documented[n]
		c, inCat := catalogued[n]
		switch {
		case !inDoc:
			t.Errorf("%s %s is catalogued but not documented in %s", what, n, doc)
		case !inCat:
			t.Errorf("%s %s is documented in %s but not catalogued", what, n, doc)
		case d != c:
			t.Errorf("%s %s: unit %q in %s, %q in the catalogue", what, n, d, doc, c)
		}
	}
	if len(catalogued) == 0 {
		t.Errorf("no %s catalogued", what)
	}
}

// TestCatalogueDocumented: docs/observation.md's catalogue and the code's
// (catalogue.go) name the same series with the same units, the same
// histograms, profile kinds and sources; and goscrape.md's table of the
// scraped series agrees too.
func TestCatalogueDocumented(t *testing.T) {
	const doc = "../../docs/observation.md"
	tables := docTables(t, doc, "The catalogue")

	series := map[string]string{}
	for _, s := range Catalogue() {
		if _, dup := series[string(s.Name)]; dup {
			t.Errorf("series %s catalogued twice", s.Name)
		}
		series[string(s.Name)] = s.Unit
	}
	agree(t, "series", doc, documented(t, tables, "series"), series)

	hists := map[string]string{}
	for _, h := range Histograms() {
		hists[string(h.Name)] = h.Unit
	}
	agree(t, "histogram", doc, documented(t, tables, "histogram"), hists)

	kinds := map[string]string{}
	for _, k := range ProfileKinds() {
		kinds[string(k)] = ""
	}
	agree(t, "profile kind", doc, documented(t, tables, "profile kind"), kinds)

	sources := map[string]string{}
	for _, s := range ProfileSources() {
		sources[string(s)] = ""
	}
	agree(t, "profile source", doc, documented(t, tables, "profile source"), sources)

	const goscrape = "../../docs/goscrape.md"
	for n, unit := range documented(t, docTables(t, goscrape, "Series"), "series") {
		if c := SeriesName(n).Unit(); c != unit {
			t.Errorf("series %s: unit %q in %s, %q in the catalogue (\"\": not catalogued)", n, unit, goscrape, c)
		}
	}
}

// TestSeriesFamilies: every family is the prefix of a catalogued series,
// and the host scan's family does not take the watched process's names.
func TestSeriesFamilies(t *testing.T) {
	for _, f := range []SeriesFamily{FamilyHost, FamilyHostMemory, FamilyHostDisk, FamilyHostNet, FamilyProcess,
		FamilyProcessMemory, FamilyHostScan, FamilyGo, FamilyGoHeap, FamilyWatcher} {
		n := 0
		for _, s := range Catalogue() {
			if s.Name.In(f) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("family %s holds no catalogued series", f)
		}
	}
	if SeriesName("process.cpu").In(FamilyHostScan) || !SeriesName("proc.cpu").In(FamilyHostScan) {
		t.Error("proc. must not take process.* names")
	}
}
