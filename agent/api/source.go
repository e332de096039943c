package api

import (
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// Source is what the API reads: the agent's store, seen from here. It is
// declared on the consumer's side so that the API builds and is tested
// without the store; the daemon binds agent/store to it. Every method may
// be called from many goroutines at once.
type Source interface {
	// Healthy says whether the agent is collecting: /healthz answers 200
	// when it is, 503 before the first window and after collection stopped.
	Healthy() bool
	// Services lists every service stored, with its versions.
	Services() ([]Service, error)
	// Range returns the records that match q, windows that start in
	// [q.From, q.To), oldest first, decoding their profiles within
	// q.Budget (an error wrapping profdecode.ErrOverBudget when they do
	// not fit).
	Range(q Query) ([]Record, error)
	// Verdicts returns a service's verdict per stored window starting in
	// [from, to), oldest first, without decoding any profile: the page's
	// chart.
	Verdicts(service string, from, to time.Time) ([]VerdictPoint, error)
	// HostSeries returns the host's own series (host.*: CPU, memory,
	// disks, network, PSI) over [from, to), each merged across windows:
	// the context a service's diagnosis reads its USE table from. The
	// services' records leave them out, as the host has them once.
	HostSeries(from, to time.Time) ([]observation.Series, error)
	// Regressions returns the regressions the agent found (active and
	// resolved), in any order.
	Regressions() ([]regress.Finding, error)
}

// Service is one service the store holds.
type Service struct {
	Name        string
	First, Last time.Time // the start of its first window, the end of its last
	Versions    []Version // oldest first
	Verdict     Summary   // its latest window's verdict
}

// Version is one version of a service: a build ID, or a label.
type Version struct {
	Version     string
	First, Last time.Time
	Labels      map[string]string
}

// Query selects records.
type Query struct {
	Service string
	Version string // "": every version
	// From and To bound the windows' starts: From ≤ start < To.
	From, To time.Time
	// Kinds keeps only the profiles of these kinds; nil keeps all. The
	// store may skip decoding the others.
	Kinds []observation.ProfileKind
	// Budget is what decoding the records' profiles may spend; nil
	// allows everything.
	Budget *profdecode.Budget
}

// Record is one stored window of one (service, version).
type Record struct {
	Service, Version string
	Start            time.Time
	Duration         time.Duration
	Obs              *observation.Observation
	Verdict          Summary
}

// VerdictPoint is one window's verdict, for the chart.
type VerdictPoint struct {
	Start    time.Time
	Duration time.Duration
	Version  string
	Verdict  Summary
}

// Summary is what the store keeps of a window's verdict.
type Summary = verdict.Summary
