package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/analyzer/regress"
)

// functionsJSON is the "functions" section of /api/v1/diff's JSON: the
// regression detector's comparison of the two sides (regress.Compare
// over the windows that start in each side's range, with the detector's
// options), so that a finding's diff link gives the finding's function,
// change and p-value. Error says why there is none (a side mixes
// versions, or holds too few samples).
type functionsJSON struct {
	*regress.Comparison
	Error string `json:"error,omitempty"`
}

// versionOptions are the detector's version options (Options.Regress),
// or the defaults.
func (s *Server) versionOptions() regress.VersionOptions {
	if s.opts.Regress != nil {
		return s.opts.Regress()
	}
	return regress.DefaultVersionOptions()
}

// functions compares the two sides' windows as the detector does. What
// goes wrong with the data (a side of several versions, too few samples)
// is said in the section; what goes wrong reading it is the request's
// error.
func (s *Server) functions(ctx context.Context, base, head Query) (functionsJSON, error) {
	var sides [2][]regress.Window
	for i, q := range []Query{base, head} {
		ws, err := s.windows(ctx, q, [2]string{"base", "head"}[i])
		if err != nil {
			return functionsJSON{}, err
		}
		sides[i] = ws
	}
	c, err := regress.Compare(sides[0], sides[1], s.versionOptions())
	if err != nil {
		if errors.Is(err, regress.ErrTooFewSamples) || errors.Is(err, regress.ErrNoWindows) || errors.Is(err, regress.ErrMixed) {
			return functionsJSON{Error: err.Error()}, nil
		}
		return functionsJSON{}, err
	}
	return functionsJSON{Comparison: c}, nil
}

// windows are the detector's windows of q's records (their cpu
// profiles only), read a chunk at a time: what it holds is the windows'
// counts by function, not their profiles.
func (s *Server) windows(ctx context.Context, q Query, param string) ([]regress.Window, error) {
	var out []regress.Window
	for from := q.From; from.Before(q.To); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		to := from.Add(s.opts.ChunkSpan)
		if to.After(q.To) || !to.After(from) {
			to = q.To
		}
		cq := q
		cq.From, cq.To, cq.Kinds, cq.Budget = from, to, []observation.ProfileKind{observation.KindCPU}, profdecode.NewBudget(s.opts.QueryMemory)
		recs, err := s.src.Range(cq)
		if errors.Is(err, profdecode.ErrOverBudget) {
			return nil, badParam(param, "the windows from %s to %s hold more profile data than one query may decode at once (%d MiB): narrow the range (%v)", stamp(from), stamp(to), s.opts.QueryMemory>>20, err)
		}
		if err != nil {
			return nil, fmt.Errorf("reading service %q from %s to %s: %w", q.Service, stamp(from), stamp(to), err)
		}
		for _, r := range recs {
			if r.Obs != nil {
				out = append(out, regress.WindowOf(r.Obs, r.Service, r.Version, r.Verdict))
			}
		}
		from = to
	}
	return out, nil
}

// withFunctions adds the "functions" section to a diff's JSON object.
func withFunctions(doc []byte, fn functionsJSON) ([]byte, error) {
	sec, err := json.Marshal(fn)
	if err != nil {
		return nil, fmt.Errorf("encoding the functions' comparison: %w", err)
	}
	body := bytes.TrimRight(doc, " \n")
	if len(body) < 2 || body[len(body)-1] != '}' {
		return nil, fmt.Errorf("adding the functions' comparison: the diff is not a JSON object")
	}
	var out bytes.Buffer
	out.Write(body[:len(body)-1])
	if len(bytes.TrimSpace(body[1:len(body)-1])) > 0 {
		out.WriteString(",")
	}
	out.WriteString("\n  \"functions\": ")
	out.Write(sec)
	out.WriteString("\n}\n")
	return out.Bytes(), nil
}
