package regress

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// rangeOf is a span's Range.
func rangeOf(version string, a *agg) Range {
	return Range{Version: version, From: a.from, To: a.to, Windows: a.all, Samples: a.n}
}

// findingID is a finding's stable ID: a hash of what it is about, so that
// the same regression found again from the same windows (after a
// restart) has the same ID.
func findingID(kind Kind, service, subject, base, head string, extra ...string) string {
	h := sha256.New()
	for _, s := range append([]string{string(kind), service, subject, base, head}, extra...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// finding makes the Finding of a kept regression: its change is that of
// its regressed test with the smallest p (its cumulative cost, or its own
// code's when the rise is there).
func (e *evaluation) finding(i int, c *Comparison, q float64) Finding {
	f := &e.fs[i]
	ts := f.regressed()
	pct, lo, hi := e.change(ts)
	out := Finding{
		ID:      findingID(KindVersion, c.Service, f.name, c.BaseVersion, c.HeadVersion),
		Service: c.Service, Kind: KindVersion, Function: f.name, Path: e.path(i),
		BaseVersion: c.BaseVersion, HeadVersion: c.HeadVersion, Base: c.Base, Head: c.Head,
		DetectedAt: e.head.to,
		ChangePct:  pct, CILow: lo, CIHigh: hi, Confidence: e.o.Confidence, PValue: ts.p,
		Own:  Change{Base: e.cost(f.sb/e.eb, e.base), Head: e.cost(f.sh/e.eh, e.head)},
		Cum:  Change{Base: e.cost(f.ib/e.eb, e.base), Head: e.cost(f.ih/e.eh, e.head)},
		Unit: c.Unit, BaseVerdict: c.BaseVerdict, HeadVerdict: c.HeadVerdict,
	}
	out.Evidence = e.evidence(f, ts, c, q)
	return out
}

// evidence says why a function is a finding, in sentences.
func (e *evaluation) evidence(f *fnStat, ts *test, c *Comparison, q float64) []string {
	what := "share of the service's CPU"
	if c.Unit != UnitShare {
		what = "CPU per request"
	}
	val := func(x float64) string { return costText(c.Unit, x) }
	pct, lo, hi := e.change(ts)
	measure := "cumulative " + what + " (it and its callees)"
	other := fmt.Sprintf("Its own code: %s → %s.", val(e.cost(f.sb/e.eb, e.base)), val(e.cost(f.sh/e.eh, e.head)))
	if ts.measure == MeasureOwn {
		measure = "own code's " + what
		other = fmt.Sprintf("With its callees: %s → %s.", val(e.cost(f.ib/e.eb, e.base)), val(e.cost(f.ih/e.eh, e.head)))
	}
	first := fmt.Sprintf("%s's %s rose from %s in %s to %s in %s (%s, %s CI %s..%s), p = %s over %s base and %s head samples.",
		f.name, measure, val(e.cost(ts.pb, e.base)), c.BaseVersion, val(e.cost(ts.ph, e.head)), c.HeadVersion,
		signedPct(pct), textfmt.Pct(e.o.Confidence), signedPct(lo), signedPct(hi),
		strconv.FormatFloat(ts.p, 'g', 2, 64), count(e.base.n), count(e.head.n))
	if ts.measure == MeasureNew {
		var news []string
		for _, name := range ts.related {
			g := &e.fs[slices.IndexFunc(e.fs, func(x fnStat) bool { return x.name == name })]
			news = append(news, fmt.Sprintf("%s (%s)", name, val(e.cost(g.ih/e.eh, e.head))))
		}
		first = fmt.Sprintf("%s calls functions %s never ran: %s. They add %s to its cumulative %s of %s in %s (%s, %s CI %s..%s), p = %s over %s base and %s head samples.",
			f.name, c.BaseVersion, strings.Join(news, ", "), val(e.cost(ts.delta, e.head)), what, val(e.cost(ts.pb, e.base)), c.BaseVersion,
			signedPct(pct), textfmt.Pct(e.o.Confidence), signedPct(lo), signedPct(hi),
			strconv.FormatFloat(ts.p, 'g', 2, 64), count(e.base.n), count(e.head.n))
		other = fmt.Sprintf("Its cumulative %s: %s → %s; its own code: %s → %s.", what, val(e.cost(f.ib/e.eb, e.base)), val(e.cost(f.ih/e.eh, e.head)),
			val(e.cost(f.sb/e.eb, e.base)), val(e.cost(f.sh/e.eh, e.head)))
	}
	out := []string{first, other}
	if ts.gated {
		out = append(out, fmt.Sprintf("The service's load fell (its CPU per second is %s of the base's): a function's share grows when the rest of the work shrinks around it, so it was held to its base CPU per second, and exceeds it.", textfmt.Pct(e.g)))
	} else if ts.floored {
		out = append(out, fmt.Sprintf("The other functions' costs per request fell (by a common factor of %.3f: fixed costs spread over more requests, or lighter ones): it was held to its base cost per request, and exceeds it.", e.c))
	} else if math.Abs(ts.ceff-1) >= 0.01 {
		out = append(out, fmt.Sprintf("The other functions' costs moved by a common factor of %.3f (dilution, the load's mix), which the change is measured against.", ts.ceff))
	}
	var explained []string
	for j := range e.fs {
		g := &e.fs[j]
		if f.anc[j] && g.cum != nil && g.cum.outcome == OutcomeExplained && slices.Contains(g.cum.related, f.name) {
			explained = append(explained, g.name)
		}
	}
	if len(explained) > 0 {
		out = append(out, "It accounts for the rise of its callers "+strings.Join(explained, ", ")+".")
	}
	out = append(out, fmt.Sprintf("%s of functions with %s or more of the CPU on a side; Benjamini–Hochberg at q = %s; dispersion φ = %.2f.",
		textfmt.Count(len(e.tests), "test", "tests"), textfmt.Pct(e.o.MinShare), strconv.FormatFloat(q, 'g', 2, 64), f.phi))
	return out
}

// costText is a cost in its unit.
func costText(unit string, x float64) string {
	switch unit {
	case UnitPerRequest:
		return textfmt.Dur(x*1e9) + "/request"
	case UnitSamplesPerRequest:
		return textfmt.NumPrecise(x) + " samples/request"
	}
	return textfmt.Pct(x)
}

func signedPct(x float64) string {
	if x >= 0 {
		return fmt.Sprintf("+%.1f%%", x)
	}
	return fmt.Sprintf("%.1f%%", x)
}

// count is a number of samples with thousands separated: "52,000".
func count(n float64) string {
	s := strconv.FormatFloat(math.Round(n), 'f', 0, 64)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
