package regress

import (
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Schema identifies the JSON layout of a Finding.
const Schema = "perfhound.regress/v1"

// Window is what the detector reads of one stored window of one service
// and version: its on-CPU samples by function, its verdict and its
// memory. WindowOf makes it from the window's observation.
type Window struct {
	Service, Version string
	// Unversioned says the version could not be read (a process gone
	// before its executable was, a push without a version): the window
	// feeds the trends of its version but never the version comparison,
	// where, between windows of the service's real version, it would look
	// like a deploy and back.
	Unversioned bool
	Start       time.Time
	Duration    time.Duration
	// CPU is the window's on-CPU samples; zero Samples when it has none.
	CPU Counts
	// Verdict is the window's verdict summary (class, load by class).
	Verdict verdict.Summary
	// Memory is the service's resident memory at the window's end, in
	// bytes (its processes' summed RSS, else its Go heap in use); 0 is
	// unknown.
	Memory float64
	// Requests is the number of requests the service served in the
	// window; 0 is unknown (then a function's cost is its share of the
	// service's CPU only).
	Requests float64
}

// Counts is one window's CPU samples by function: for each function, the
// samples in which it is the leaf (Self) and in which it is on the stack
// at all (Incl, counted once per sample however often it recurs), and
// for each caller → callee pair, the samples holding that call. Names are
// pprof function names.
type Counts struct {
	// Source is the profile the counts come from (observation.SourceEBPF
	// for the eBPF collectors' cpu profile, else a Go endpoint's or an
	// SDK's): windows of different sources never pool.
	Source string
	// Samples is the number of samples, N.
	Samples float64
	// Period is the CPU time one sample stands for, in seconds (the
	// profile's sampling period); 0 when unknown. It turns samples per
	// request into CPU seconds per request.
	Period float64
	// Funcs holds every function with Incl > 0.
	Funcs map[string]FuncCount
	// Calls holds every caller → callee pair with its samples.
	Calls map[Call]float64
}

// FuncCount is a function's samples in a window.
type FuncCount struct{ Self, Incl float64 }

// Call is one edge of the call graph.
type Call struct{ Caller, Callee string }

// Kind says what a finding is about.
type Kind string

const (
	// KindVersion: a new version's function costs more than the
	// previous version's.
	KindVersion Kind = "version"
	// KindDrift: a function's share, or a resource's load, moved within
	// one version and stayed there.
	KindDrift Kind = "drift"
	// KindClass: the service is bound by another class than it was, or
	// a class's load crossed the verdict's threshold, and it stays so.
	KindClass Kind = "class"
	// KindLeak: the service's memory climbs steadily.
	KindLeak Kind = "leak"
)

// Range is a span of stored windows of one version.
type Range struct {
	Version string    `json:"version"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Windows int       `json:"windows"`
	Samples float64   `json:"samples"`
}

// Finding is one regression. Its ID is stable: the same regression found
// again (after a restart, from the same windows) has the same ID.
type Finding struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Kind    Kind   `json:"kind"`
	// Function is the blamed function (pprof name); "" for a finding on
	// a resource (Resource) or a class.
	Function string `json:"function,omitempty"`
	// Resource is the class or series a drift, class or leak finding is
	// about (e.g. "cpu", "io", "memory").
	Resource string `json:"resource,omitempty"`
	// Path is the heaviest call path from a root to Function.
	Path []string `json:"path,omitempty"`

	BaseVersion string `json:"base_version"`
	HeadVersion string `json:"head_version"`
	Base        Range  `json:"base"`
	Head        Range  `json:"head"`
	// DetectedAt is the end of the window that made the finding.
	DetectedAt time.Time `json:"detected_at"`

	// ChangePct is the relative change of the blamed cost (the
	// function's inclusive share of the service's CPU, per request where
	// known, or its own code's when the rise is there, or what its new
	// callees add to its inclusive share; a resource's load; memory's
	// growth per hour), with its confidence interval (CILow, CIHigh) at
	// Confidence.
	ChangePct  float64 `json:"change_pct"`
	CILow      float64 `json:"ci_low_pct"`
	CIHigh     float64 `json:"ci_high_pct"`
	Confidence float64 `json:"confidence"`
	PValue     float64 `json:"p_value"`
	// Own and Cum are the function's self and inclusive shares of the
	// service's CPU, base and head (fractions).
	Own Change `json:"own"`
	Cum Change `json:"cum"`
	// Unit says what Own and Cum and ChangePct are per: "share of the
	// service's CPU" or "CPU seconds per request".
	Unit string `json:"unit"`

	// BaseVerdict and HeadVerdict are the two sides' verdicts, combined
	// over their ranges.
	BaseVerdict verdict.Summary `json:"base_verdict"`
	HeadVerdict verdict.Summary `json:"head_verdict"`
	// Evidence says in sentences why this is a finding.
	Evidence []string `json:"evidence"`

	// Resolved is set when a later version (ResolvedBy) no longer has
	// the regression, or a drift went away.
	Resolved   bool      `json:"resolved"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
}

// Change is a cost in a base and a head.
type Change struct {
	Base float64 `json:"base"`
	Head float64 `json:"head"`
}

// Event is what one window changed: a finding raised, or resolved.
type Event struct {
	Finding  Finding
	Resolved bool
}
