package regress

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// TrendOptions configure drift, class and leak detection within a
// version (drift.go, resource.go, class.go, leak.go), whose comments
// say why each number. DefaultTrendOptions are the agent's.
type TrendOptions struct {
	// BlockLength is the span a version's windows are pooled over before
	// its series are tested: a 10-s window of a service using half a
	// core holds about 100 samples, far too few for a function's share.
	// Blocks are aligned to the clock, so a replay cuts them the same.
	BlockLength time.Duration
	// RefBlocks is the reference's length, GapBlocks how far it lags the
	// block tested: the reference is the RefBlocks blocks that ended
	// GapBlocks blocks earlier (at first, the version's first RefBlocks
	// after the block it started in, which is left out as its warm-up).
	// The lag lets a slow drift pile up against a reference that has not
	// followed it. An hour rather than half of one (measured with
	// PersistBlocks 3): in 36 simulated service-days of noise, half an
	// hour raised one false drift and an hour none; rises of 10% of a 9%
	// function at 0.25 core were found 2 times in 10 and 4.
	RefBlocks, GapBlocks int
	// PersistBlocks is how long a change must hold after the screen
	// flagged it to be a finding (and its last block still hold), and
	// how long the opposite must hold for a class finding to be
	// resolved. Twenty minutes: a warm-up of a quarter of an hour after
	// a restart spans the alarm's block and three more.
	PersistBlocks int
	// CUSUMK and CUSUMH are the one-sided CUSUM's allowance and decision
	// interval, in standard errors of a block: k = 0.5 is tuned to a
	// shift of one standard error, h = 8 gives about 18,000 blocks
	// between false alarms of one series without a shift.
	CUSUMK, CUSUMH float64
	// MinShare is the least inclusive share of the service's CPU, in the
	// reference or the block, for a function to be tested; functions
	// under a quarter of it in every block kept are not tracked at all.
	MinShare float64
	// MinRelChange and MinAbsChange are the least change of a function's
	// share worth a finding: relative to the reference, and in share.
	MinRelChange, MinAbsChange float64
	// FDR is the false discovery rate of the screen's alarms at one
	// block, across the functions tested (Benjamini–Hochberg), and
	// across the resources.
	FDR float64
	// PersistAlpha is the one-sided significance the blocks after an
	// alarm must reach on their own to confirm it, and the blocks after
	// a finding to show it went away. A persistence is looked at up to
	// PersistBlocks+1 times (from PersistBlocks blocks to twice that),
	// so each look spends an equal part of it.
	PersistAlpha float64
	// MinBlockSamples is the least CPU samples a block needs to be
	// tested or to count in a reference: too few samples, wait.
	MinBlockSamples float64
	// ResourceMinRelChange and ResourceMinLoad are the least change of a
	// resource's time per unit of work worth a drift finding: relative,
	// and in threads (the extra time per second of wall time it costs at
	// the block's work rate).
	ResourceMinRelChange, ResourceMinLoad float64
	// ClassMargin is the hysteresis of the class rules: a block counts
	// as another class only if it still is with the verdict's thresholds
	// and loads moved this part in favour of the reference's class; a
	// load crosses a threshold when it passes it by this part.
	ClassMargin float64
	// Thresholds are the verdict's, which the class rules judge by.
	Thresholds verdict.Thresholds
	// LeakSpan is how much of a version's memory history the leak rule
	// fits (at most), LeakMinSpan how much it needs.
	LeakSpan, LeakMinSpan time.Duration
	// LeakAlpha is the Mann–Kendall test's one-sided significance.
	LeakAlpha float64
	// LeakMinGrowth (a fraction of the memory at the span's start) and
	// LeakMinBytesPerHour are the least growth an hour that is a leak.
	LeakMinGrowth, LeakMinBytesPerHour float64
	// LeakRestartDrop: memory falling under this part of its low-water
	// mark of the last ten minutes is a restart, and the fit starts over.
	// A collector's sawtooth does not move the minutes' low-water marks
	// (they see under it); a restarted process is often back at more than
	// half its plateau by its first window's end (a service loading its
	// data at start, a heap refilling within seconds).
	LeakRestartDrop float64
	// Confidence is the confidence of the intervals findings carry.
	Confidence float64
	// StaleVersion: a version of a service not seen for this long while
	// another version of the service runs is gone; its findings are
	// resolved by the one that runs.
	StaleVersion time.Duration
	// MaxFunctions bounds the functions tracked per version; the ones
	// with the least share go first.
	MaxFunctions int
}

// DefaultTrendOptions are the agent's.
func DefaultTrendOptions() TrendOptions {
	return TrendOptions{
		BlockLength:          5 * time.Minute,
		RefBlocks:            12,
		GapBlocks:            6,
		PersistBlocks:        4,
		CUSUMK:               0.5,
		CUSUMH:               8,
		MinShare:             0.01,
		MinRelChange:         0.05,
		MinAbsChange:         0.001,
		FDR:                  0.01,
		PersistAlpha:         0.001,
		MinBlockSamples:      200,
		ResourceMinRelChange: 0.10,
		ResourceMinLoad:      0.02,
		ClassMargin:          0.2,
		Thresholds:           verdict.DefaultThresholds(),
		LeakSpan:             time.Hour,
		LeakMinSpan:          30 * time.Minute,
		LeakAlpha:            1e-3,
		LeakMinGrowth:        0.10,
		LeakMinBytesPerHour:  16 << 20,
		LeakRestartDrop:      0.7,
		Confidence:           0.95,
		StaleVersion:         15 * time.Minute,
		MaxFunctions:         2000,
	}
}

// Lookback is how much of a service's latest windows a new detector must
// be fed to rebuild what the trends compare with: the warm-up block, the
// reference, its lag and the longest persistence, and the leak rule's
// span (2 h 15 min by default). A change older than that, still held, is
// compared with a reference that already holds it, and is not found
// again; the Detector's own Lookback must cover this one.
func (o TrendOptions) Lookback() time.Duration {
	blocks := o.BlockLength * time.Duration(1+o.RefBlocks+o.GapBlocks+2*o.PersistBlocks)
	return max(blocks, o.LeakSpan+o.BlockLength)
}

// maxTrendVersions bounds the versions of one service kept at once (a rolling
// deploy runs two); the least recently seen goes first.
const maxTrendVersions = 4

// trends finds drift, class changes and leaks within each version of
// each service. The Detector feeds it every window, in time order.
type trends struct {
	o        TrendOptions
	ringLen  int
	zCI      float64 // two-sided normal quantile at o.Confidence
	zPersist float64 // one-sided normal quantile at o.PersistAlpha, spent over the persistence's looks
	services map[string]map[string]*verTrend
	fitBuf   []float64
	// restored are unresolved findings from before a restart (restore),
	// by service, until a window of their version takes them into its
	// verTrend or another version's retires them; restoredSince is the
	// service's first window after the restore, from which a restored
	// finding's version counts as not seen.
	restored      map[string][]Finding
	restoredSince map[string]time.Time
}

func newTrends(o TrendOptions) *trends {
	return &trends{
		o:        o,
		ringLen:  o.RefBlocks + o.GapBlocks + 1,
		zCI:      quantileZ(1 - (1-o.Confidence)/2),
		zPersist: quantileZ(1 - o.PersistAlpha/float64(o.PersistBlocks+1)),
		services: map[string]map[string]*verTrend{},
		restored: map[string][]Finding{},

		restoredSince: map[string]time.Time{},
	}
}

// forget drops what is known of service (the Detector evicted it).
func (t *trends) forget(service string) {
	delete(t.services, service)
	delete(t.restored, service)
	delete(t.restoredSince, service)
}

// observe reads one window and returns the findings it raised or
// resolved.
func (t *trends) observe(w Window) []Event {
	vs := t.services[w.Service]
	if vs == nil {
		vs = map[string]*verTrend{}
		t.services[w.Service] = vs
	}
	ev := t.retire(vs, w)
	ev = append(ev, t.retireRestored(w)...)
	v := vs[w.Version]
	if v == nil {
		v = newVerTrend(t, w)
		vs[w.Version] = v
	}
	if fs := t.restored[w.Service]; len(fs) > 0 {
		// The version's findings from before the restart are its own now.
		t.restored[w.Service] = slices.DeleteFunc(fs, func(f Finding) bool {
			if f.HeadVersion == w.Version {
				v.restored = append(v.restored, f)
				return true
			}
			return false
		})
	}
	ev = v.observe(w, ev)
	return append(ev, v.supersede(ev)...)
}

// restore keeps an unresolved drift, class or leak finding from before a
// restart (Detector.Restore) until its version's first window, or until
// another version's retires it: a drift older than the replay's reach
// cannot be found again from the windows replayed, and must still be
// resolved when its version stops running.
func (t *trends) restore(f Finding) {
	fs := t.restored[f.Service]
	if !slices.ContainsFunc(fs, func(g Finding) bool { return g.ID == f.ID }) {
		t.restored[f.Service] = append(fs, f)
	}
}

// retireRestored resolves the restored findings of versions other than
// w's not seen for StaleVersion before w, counted from the later of
// their raising and the service's first window after the restore: a
// version still running shows a window, and takes its findings, well
// within that.
func (t *trends) retireRestored(w Window) []Event {
	fs := t.restored[w.Service]
	if len(fs) == 0 {
		return nil
	}
	since, ok := t.restoredSince[w.Service]
	if !ok {
		since = w.Start
		t.restoredSince[w.Service] = since
	}
	var ev []Event
	t.restored[w.Service] = slices.DeleteFunc(fs, func(f Finding) bool {
		seen := f.DetectedAt
		if since.After(seen) {
			seen = since // nothing is known of the version between
		}
		if f.HeadVersion == w.Version || w.Start.Sub(seen) < t.o.StaleVersion {
			return false
		}
		f.Resolved, f.ResolvedAt, f.ResolvedBy = true, w.Start, w.Version
		f.Evidence = append(slices.Clip(f.Evidence), "Version "+f.HeadVersion+" no longer runs; "+w.Version+" does.")
		ev = append(ev, Event{Finding: f, Resolved: true})
		return true
	})
	return ev
}

// supersede settles the version's restored findings against what it
// just raised or resolved (ev): one with the same ID is the live one
// now; one of the same kind and subject raised under another ID (the
// replay began later than the windows that first raised it) is resolved
// as replaced by it, so that the store keeps one of them active.
func (v *verTrend) supersede(ev []Event) []Event {
	if len(v.restored) == 0 {
		return nil
	}
	var out []Event
	for _, e := range ev {
		n := e.Finding
		if n.HeadVersion != v.version {
			continue
		}
		v.restored = slices.DeleteFunc(v.restored, func(f Finding) bool {
			switch {
			case f.ID == n.ID:
				return true
			case !e.Resolved && f.Kind == n.Kind && f.Function == n.Function && f.Resource == n.Resource:
				f.Resolved, f.ResolvedAt, f.ResolvedBy = true, n.DetectedAt, v.version
				f.Evidence = append(slices.Clip(f.Evidence), "Found again after the agent restarted, as "+n.ID+".")
				out = append(out, Event{Finding: f, Resolved: true})
				return true
			}
			return false
		})
	}
	return out
}

// retire resolves the findings of the service's versions that are gone:
// not seen for StaleVersion while w's version runs, or the least recently
// seen past maxVersions.
func (t *trends) retire(vs map[string]*verTrend, w Window) []Event {
	var gone []*verTrend
	for name, v := range vs {
		if name != w.Version && w.Start.Sub(v.lastEnd) >= t.o.StaleVersion {
			gone = append(gone, v)
		}
	}
	if _, ok := vs[w.Version]; !ok && len(vs)-len(gone) >= maxTrendVersions {
		var oldest *verTrend
		for name, v := range vs {
			if name != w.Version && !slices.Contains(gone, v) && (oldest == nil || v.lastEnd.Before(oldest.lastEnd)) {
				oldest = v
			}
		}
		gone = append(gone, oldest)
	}
	slices.SortFunc(gone, func(a, b *verTrend) int { return strings.Compare(a.version, b.version) })
	var ev []Event
	for _, v := range gone {
		for _, f := range v.active() {
			f.Resolved, f.ResolvedAt, f.ResolvedBy = true, w.Start, w.Version
			f.Evidence = append(f.Evidence, "Version "+v.version+" no longer runs; "+w.Version+" does.")
			ev = append(ev, Event{Finding: *f, Resolved: true})
		}
		delete(vs, v.version)
	}
	return ev
}

// verTrend is the trends of one version of one service.
type verTrend struct {
	t                *trends
	service, version string
	source           string // the CPU counts' source; windows of another are not read for CPU
	first            int64  // the block the version was first seen in: its warm-up
	lastEnd          time.Time

	cur  trendBlock   // the block being filled
	ring []trendBlock // closed blocks, by seq % ringLen

	fn   fnTrends
	res  resTrends
	cls  classTrend
	leak leakTrend

	// restored are the version's unresolved findings from before a
	// restart (Detector.Restore) that the replay has not raised or
	// resolved again: a drift older than the replay's reach cannot be
	// found again from the windows replayed, and must still be resolved
	// when its version goes.
	restored []Finding
}

func newVerTrend(t *trends, w Window) *verTrend {
	v := &verTrend{t: t, service: w.Service, version: w.Version, first: t.blockOf(w.Start)}
	v.ring = make([]trendBlock, t.ringLen)
	for i := range v.ring {
		v.ring[i].seq = math.MinInt64
	}
	v.cur.seq = math.MinInt64
	v.fn.init()
	return v
}

// blockOf is the clock-aligned block holding t.
func (t *trends) blockOf(at time.Time) int64 {
	return floorDiv64(at.UnixNano(), int64(t.o.BlockLength))
}

// blockStart is when block seq starts.
func (t *trends) blockStart(seq int64) time.Time {
	return time.Unix(0, seq*int64(t.o.BlockLength)).UTC()
}

// floorDiv64 is a/b rounded down (times before 1970 have negative
// nanoseconds).
func floorDiv64(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// observe adds w to its block, closes the blocks it ends, and tests.
func (v *verTrend) observe(w Window, ev []Event) []Event {
	seq := v.t.blockOf(w.Start)
	if v.cur.seq != math.MinInt64 && seq < v.cur.seq {
		return ev // out of order: the contract is time order
	}
	if v.cur.seq != math.MinInt64 && seq > v.cur.seq {
		ev = v.close(ev)
	}
	if v.cur.seq == math.MinInt64 {
		v.cur.reset(seq)
	}
	end := w.Start.Add(w.Duration)
	if end.After(v.lastEnd) {
		v.lastEnd = end
	}
	v.add(w)
	ev = v.leak.observe(v, w, ev)
	if !end.Before(v.t.blockStart(seq + 1)) {
		ev = v.close(ev)
	}
	return ev
}

// add pools w into the current block.
func (v *verTrend) add(w Window) {
	b := &v.cur
	b.span.addWindow(w)
	if w.CPU.Samples > 0 {
		if v.source == "" {
			v.source = w.CPU.Source
		}
		if w.CPU.Source == v.source {
			b.cpuWindows++
			b.span.samples += w.CPU.Samples
			b.span.cpuSeconds += w.Duration.Seconds()
			v.fn.addWindow(w)
		}
	}
	b.res.addWindow(w)
}

// close ends the current block: it goes into the ring and every rule
// reads it.
func (v *verTrend) close(ev []Event) []Event {
	b := v.cur
	v.ring[v.slot(b.seq)] = b
	v.cur.reset(math.MinInt64)
	v.fn.push(v, b.seq)
	if b.seq == v.first {
		return ev // the warm-up: tracked, never tested nor a reference
	}
	ev = v.fn.close(v, b.seq, ev)
	ev = v.cls.close(v, b.seq, ev)
	ev = v.res.close(v, b.seq, ev)
	return ev
}

func (v *verTrend) slot(seq int64) int {
	return int(((seq % int64(len(v.ring))) + int64(len(v.ring))) % int64(len(v.ring)))
}

// block returns the closed block seq, or nil when the ring no longer (or
// never) held it.
func (v *verTrend) block(seq int64) *trendBlock {
	b := &v.ring[v.slot(seq)]
	if b.seq != seq {
		return nil
	}
	return b
}

// refRange is the reference of block seq: blocks [from, to), or ok false
// while the version has not had RefBlocks blocks past its warm-up.
func (v *verTrend) refRange(seq int64) (from, to int64, ok bool) {
	o := v.t.o
	to = max(seq-int64(o.GapBlocks), v.first+1+int64(o.RefBlocks))
	if to > seq {
		return 0, 0, false
	}
	return to - int64(o.RefBlocks), to, true
}

// confirmFrom is where the confirmation reference of a rise beginning
// at block seq starts: the oldest block kept, past the warm-up.
func (v *verTrend) confirmFrom(seq int64) int64 {
	return max(v.first+1, seq-int64(len(v.ring))+1)
}

// active lists the version's findings that hold, in a stable order.
func (v *verTrend) active() []*Finding {
	var out []*Finding
	for i := range v.restored {
		out = append(out, &v.restored[i])
	}
	for _, f := range v.fn.fns {
		if f.found != nil {
			out = append(out, f.found)
		}
	}
	for i := range v.res.series {
		if f := v.res.series[i].found; f != nil {
			out = append(out, f)
		}
	}
	out = append(out, v.cls.active()...)
	if v.leak.found != nil {
		out = append(out, v.leak.found)
	}
	return out
}

// finding starts a finding of this version.
func (v *verTrend) finding(kind Kind, fn, resource string, start time.Time, detected time.Time) *Finding {
	subject := fn
	if subject == "" {
		subject = resource
	}
	return &Finding{
		ID:          trendID(kind, v.service, v.version, subject, start),
		Service:     v.service,
		Kind:        kind,
		Function:    fn,
		Resource:    resource,
		BaseVersion: v.version,
		HeadVersion: v.version,
		DetectedAt:  detected,
		Confidence:  v.t.o.Confidence,
	}
}

// trendID is a finding's stable ID: the same windows give the same one.
func trendID(kind Kind, service, version, subject string, start time.Time) string {
	h := sha256.New()
	for _, s := range []string{string(kind), service, version, subject} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start.Unix()))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// trendBlock is what is kept of one block of a version's windows.
type trendBlock struct {
	seq        int64
	span       trendSpan // its samples are those of the version's CPU source
	cpuWindows int
	res        resBlock
	// classAway: the block was under a class finding (another class
	// than the reference's), and is no reference for the class rules.
	classAway bool
}

func (b *trendBlock) reset(seq int64) { *b = trendBlock{seq: seq} }

// trendSpan is a run of windows: when, how many, their CPU samples, and the
// sums their verdicts combine from.
type trendSpan struct {
	from, to time.Time
	windows  int
	// samples are the CPU samples of the version's source, cpuSeconds
	// the length of the windows that have them.
	samples, cpuSeconds float64
	verdict             trendVerdicts
}

func (s *trendSpan) addWindow(w Window) {
	end := w.Start.Add(w.Duration)
	if s.windows == 0 || w.Start.Before(s.from) {
		s.from = w.Start
	}
	if end.After(s.to) {
		s.to = end
	}
	s.windows++
	s.verdict.add(w.Verdict, w.Duration.Seconds())
}

func (s *trendSpan) add(o trendSpan) {
	if o.windows == 0 {
		return
	}
	if s.windows == 0 || o.from.Before(s.from) {
		s.from = o.from
	}
	if o.to.After(s.to) {
		s.to = o.to
	}
	s.windows += o.windows
	s.samples += o.samples
	s.cpuSeconds += o.cpuSeconds
	s.verdict.addSum(o.verdict)
}

func (s trendSpan) rangeOf(version string) Range {
	return Range{Version: version, From: s.from, To: s.to, Windows: s.windows, Samples: s.samples}
}

// nTrendClasses is len(verdict.Classes) (a test holds them equal).
const nTrendClasses = 5

func trendClassIndex(c verdict.Class) int { return slices.Index(verdict.Classes, c) }

// trendVerdicts is what verdict.Combine reads of windows, summed with their
// lengths as weights: the combined verdict of blocks is the one of their
// windows.
type trendVerdicts struct {
	w, runQueue, confidence float64
	load                    [nTrendClasses]float64
}

func (s *trendVerdicts) add(v verdict.Summary, seconds float64) {
	if !(seconds > 0) || math.IsInf(seconds, 0) {
		return
	}
	s.w += seconds
	s.runQueue += seconds * v.RunQueue
	s.confidence += seconds * v.Confidence
	for c, l := range v.Load {
		if i := trendClassIndex(c); i >= 0 {
			s.load[i] += seconds * l
		}
	}
}

func (s *trendVerdicts) addSum(o trendVerdicts) {
	s.w += o.w
	s.runQueue += o.runQueue
	s.confidence += o.confidence
	for i := range s.load {
		s.load[i] += o.load[i]
	}
}

// loadOf is the mean load of class i (-1: the run queue).
func (s trendVerdicts) loadOf(i int) float64 {
	if s.w == 0 {
		return 0
	}
	if i < 0 {
		return s.runQueue / s.w
	}
	return s.load[i] / s.w
}

// summary is the combined verdict, as verdict.Combine says.
func (s trendVerdicts) summary(th verdict.Thresholds) verdict.Summary {
	if s.w == 0 {
		return verdict.Combine(nil, nil, th)
	}
	one := verdict.Summary{Load: map[verdict.Class]float64{}, RunQueue: s.runQueue / s.w, Confidence: s.confidence / s.w}
	for i, c := range verdict.Classes {
		if s.load[i] != 0 {
			one.Load[c] = s.load[i] / s.w
		}
	}
	return verdict.Combine([]verdict.Summary{one}, []float64{s.w}, th)
}
