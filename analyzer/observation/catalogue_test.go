package observation

import (
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/doccheck"
)

// TestCatalogueDocumented: docs/observation.md's catalogue and the code's
// (catalogue.go) name the same series with the same units, the same
// histograms, profile kinds and sources; and goscrape.md's table of the
// scraped series agrees too.
func TestCatalogueDocumented(t *testing.T) {
	const doc = "../../docs/observation.md"
	tables := doccheck.Tables(t, doc, "The catalogue")

	series := map[string]string{}
	for _, s := range Catalogue() {
		if _, dup := series[string(s.Name)]; dup {
			t.Errorf("series %s catalogued twice", s.Name)
		}
		series[string(s.Name)] = s.Unit
	}
	doccheck.Agree(t, "series", doc, doccheck.Documented(t, tables, "series"), series)

	hists := map[string]string{}
	for _, h := range Histograms() {
		hists[string(h.Name)] = h.Unit
	}
	doccheck.Agree(t, "histogram", doc, doccheck.Documented(t, tables, "histogram"), hists)

	kinds := map[string]string{}
	for _, k := range ProfileKinds() {
		kinds[string(k)] = ""
	}
	doccheck.Agree(t, "profile kind", doc, doccheck.Documented(t, tables, "profile kind"), kinds)

	sources := map[string]string{}
	for _, s := range ProfileSources() {
		sources[string(s)] = ""
	}
	doccheck.Agree(t, "profile source", doc, doccheck.Documented(t, tables, "profile source"), sources)

	const goscrape = "../../docs/goscrape.md"
	for n, unit := range doccheck.Documented(t, doccheck.Tables(t, goscrape, "Series"), "series") {
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

// TestSignalsDocumented: the table of docs/observation.md's section on
// what is recorded as missing names every catalogued signal and no other.
func TestSignalsDocumented(t *testing.T) {
	const doc = "../../docs/observation.md"
	signals := map[string]string{}
	for _, s := range Signals() {
		if _, dup := signals[string(s)]; dup {
			t.Errorf("signal %s catalogued twice", s)
		}
		signals[string(s)] = ""
	}
	tables := doccheck.Tables(t, doc, "What is recorded as missing, and when")
	doccheck.Agree(t, "signal", doc, doccheck.Documented(t, tables, "signal"), signals)
}

// TestCatalogueListed: every name catalogue.go declares is in the list
// the documentation tests read.
func TestCatalogueListed(t *testing.T) {
	for typ, list := range map[string]string{
		"SeriesName": "seriesCatalogue", "HistogramName": "Histograms", "ProfileKind": "ProfileKinds",
		"ProfileSource": "ProfileSources", "Signal": "Signals",
	} {
		doccheck.Listed(t, "catalogue.go", typ, list)
	}
}

// TestSignalParts: the signals made from parts are the catalogued ones.
func TestSignalParts(t *testing.T) {
	for _, c := range []struct{ got, want Signal }{
		{ProfileSignal(SourcePprof, KindMutex), SignalPprofMutex},
		{ProfileSignal(SourcePprof, KindCPU), SignalPprofCPU},
		{SignalEBPF.Sub("oncpu"), SignalEBPFOnCPU},
		{SignalHostTCP.Sub("ext"), SignalHostTCPExt},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
