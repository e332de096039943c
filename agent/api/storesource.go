package api

import (
	"encoding/json"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"

	"github.com/perfhound/perfhound/agent/store"
)

// StoreSource is the agent's store as the API reads it. healthy says
// whether the agent is collecting (/healthz).
func StoreSource(st *store.Store, healthy func() bool) Source {
	return storeSource{st: st, healthy: healthy}
}

type storeSource struct {
	st      *store.Store
	healthy func() bool
}

func (s storeSource) Healthy() bool { return s.healthy() }

func (s storeSource) Services() ([]Service, error) {
	ss, err := s.st.Services()
	if err != nil {
		return nil, err
	}
	out := make([]Service, len(ss))
	for i, sv := range ss {
		out[i] = Service{Name: sv.Name, First: sv.First, Last: sv.Last, Verdict: summaryOf(sv.Verdict)}
		for _, v := range sv.Versions {
			out[i].Versions = append(out[i].Versions, Version{Version: v.Version, First: v.First, Last: v.Last, Labels: v.Labels})
		}
	}
	return out, nil
}

func (s storeSource) Range(q Query) ([]Record, error) {
	rs, err := s.st.Range(store.Query{Service: q.Service, Version: q.Version, From: q.From, To: q.To, Kinds: q.Kinds, Budget: q.Budget})
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = Record{Service: r.Service, Version: r.Version, Start: r.Start, Duration: r.Duration, Obs: r.Obs, Verdict: summaryOf(r.Verdict)}
	}
	return out, nil
}

func (s storeSource) Verdicts(service string, from, to time.Time) ([]VerdictPoint, error) {
	ps, err := s.st.Verdicts(service, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]VerdictPoint, len(ps))
	for i, p := range ps {
		out[i] = VerdictPoint{Start: p.Start, Duration: p.Duration, Version: p.Version, Verdict: summaryOf(p.Verdict)}
	}
	return out, nil
}

// summaryOf reads a stored verdict summary; a record without one (or one
// that does not read) has the zero summary: no class.
func summaryOf(raw json.RawMessage) Summary {
	var s Summary
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

func (s storeSource) HostSeries(from, to time.Time) ([]observation.Series, error) {
	return s.st.HostSeries(from, to)
}

func (s storeSource) Regressions() ([]regress.Finding, error) { return s.st.Findings() }
