package bpf

import "math"

// HistSlots is the number of log2 buckets in a Histogram.
const HistSlots = 48

// Histogram is a log2 histogram as the kernel side keeps it: Slots[0]
// counts values 0 and 1, Slots[i] for i ≥ 1 counts values in [2^i, 2^(i+1)),
// and the last slot everything from 2^47 up (78 hours in nanoseconds).
// Sum is the exact total of the values, so Mean is exact too.
type Histogram struct {
	Slots [HistSlots]uint64 `json:"slots"`
	Count uint64            `json:"count"`
	Sum   uint64            `json:"sum"`
}

// slotBounds returns the range of values counted in slot i.
func slotBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 2
	}
	return math.Ldexp(1, i), math.Ldexp(1, i+1)
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1), interpolating linearly
// inside the bucket where it falls: the answer is within a factor of two of
// the truth, the resolution log2 buckets give (as in BCC's tools). It
// returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) float64 {
	var total uint64
	for _, n := range h.Slots {
		total += n
	}
	if total == 0 {
		return 0
	}
	q = math.Max(0, math.Min(1, q))
	rank := q * float64(total)
	var seen float64
	for i, n := range h.Slots {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			lo, hi := slotBounds(i)
			if i == HistSlots-1 {
				return lo // open-ended: no upper bound to interpolate to
			}
			return lo + (hi-lo)*(rank-seen)/float64(n)
		}
		seen += float64(n)
	}
	lo, _ := slotBounds(HistSlots - 1)
	return lo
}

// Mean is the exact mean of the recorded values.
func (h *Histogram) Mean() float64 {
	if h.Count == 0 {
		return 0
	}
	return float64(h.Sum) / float64(h.Count)
}

// Merge adds o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range h.Slots {
		h.Slots[i] += o.Slots[i]
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// histogramOf converts a kernel struct hist, as bpf2go lays it out.
func histogramOf(slots [HistSlots]uint64, count, sum uint64) Histogram {
	return Histogram{Slots: slots, Count: count, Sum: sum}
}
