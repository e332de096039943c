package verdict

import (
	"maps"
	"math"
)

// Summary is what is kept of a verdict once its window is past: the class
// and how clearly, the load by class, and the sentence. A store keeps one
// per window and Combine makes one of a longer span from them.
type Summary struct {
	Class      Class             `json:"class"`
	Secondary  Class             `json:"secondary,omitempty"`
	Confidence float64           `json:"confidence"`
	Load       map[Class]float64 `json:"load"`
	Summary    string            `json:"summary"`
	// RunQueue is the part of Load[cpu] spent waiting for a CPU rather
	// than on one. The class is chosen with it (memory management's share
	// of the CPU time is of the time on a CPU), so Combine keeps it to
	// choose a span's class by the same rule as a window's.
	RunQueue float64 `json:"run_queue,omitempty"`
}

// Summarize is the verdict's summary. Its run-queue load is the one
// Judge chose the class with; for a verdict decoded from JSON, which does
// not carry it, the breakdown's run-queue time that counted as cpu over
// the verdict's duration.
func (v *Verdict) Summarize() Summary {
	rq := v.runQueue
	if rq == 0 && v.Duration > 0 {
		rq = v.Breakdown.RunQueueCPU / v.Duration.Seconds()
	}
	load := maps.Clone(v.Load)
	if load == nil {
		load = map[Class]float64{}
	}
	return Summary{Class: v.Class, Secondary: v.Secondary, Confidence: v.Confidence, Load: load, Summary: v.Summary, RunQueue: rq}
}

// Combine summarizes a span from its windows' summaries: each load (and
// the run-queue load) is the mean of the windows' weighted by weights,
// the windows' lengths in seconds, so a long window counts for more; the
// class and secondary are chosen from those loads by Judge's own rule
// (choose); the confidence is the windows' weighted mean; the sentence
// is said in the verdict's words from the combined class and loads,
// without a window's first priority (a summary does not keep the
// priorities to rank them over the span).
//
// A summary whose weight is missing (weights shorter than ss), not
// positive or not finite counts for nothing. With nothing that counts,
// the span is judged none, as a window covering no time is.
func Combine(ss []Summary, weights []float64, th Thresholds) Summary {
	out := Summary{Load: map[Class]float64{}}
	var total, confidence float64
	for i, s := range ss {
		if i >= len(weights) || !(weights[i] > 0) || math.IsInf(weights[i], 0) {
			continue
		}
		w := weights[i]
		total += w
		for c, l := range s.Load {
			out.Load[c] += w * l
		}
		out.RunQueue += w * s.RunQueue
		confidence += w * s.Confidence
	}
	if total == 0 {
		out.Class, out.Summary = ClassNone, noTime
		return out
	}
	for c := range out.Load {
		out.Load[c] /= total
	}
	out.RunQueue /= total
	out.Class, out.Secondary = choose(out.Load, out.RunQueue, th)
	out.Confidence = math.Round(confidence/total*100) / 100
	out.Summary = summary(&Verdict{Class: out.Class, Secondary: out.Secondary, Load: out.Load})
	return out
}
