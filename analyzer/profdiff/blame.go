package profdiff

import (
	"math"

	"github.com/perfhound/perfhound/analyzer/stat"
)

// Blame answers "which function's change made this benchmark slower?".
//
// Function-level deltas cannot answer it alone: when a function calls a
// helper 10% more often, the helper's cost grows as much as if the helper
// itself had become 10% slower. What tells them apart is the shape of the
// growth in the call tree. A function that does more of its work grows
// uniformly: its own code and every callee by about the same factor. A
// callee that got slower grows faster than the rest of its caller.
//
// So Blame walks the call tree of first-party frames from the benchmark
// function down, following the child that carries the most growth, while
// that child grew significantly faster (at least twice the relative
// growth, and p < Alpha by the exact Poisson test on sample counts) than
// the rest of its parent. It stops where the growth is spread evenly, or
// sits in the node's own code: that node's function is blamed. Where line
// numbers say the growth entered through call sites the base never
// sampled (a new call in the caller), it stops at the caller.
type Blame struct {
	// Function is the blamed function.
	Function string `json:"function"`
	// Path is the call path from the benchmark function to it.
	Path []string `json:"path"`
	// Delta is the growth of the blamed node's cost (itself and its
	// callees), in the selection's unit.
	Delta float64 `json:"delta"`
	// Why says what stopped the walk there.
	Why string `json:"why"`
}

// treeNode is a first-party frame in a call tree; library frames below it
// count as its self cost.
type treeNode struct {
	fn                string
	total, self       float64 // values
	totalEv, selfEv   float64 // sampling events
	children          map[string]*treeNode
	sites             map[string]map[int64]float64 // child → line in fn → events
	benchmarkFunction bool
}

func newNode(fn string) *treeNode {
	return &treeNode{fn: fn, children: map[string]*treeNode{}, sites: map[string]map[int64]float64{}}
}

// callTree pools the part k of every profile of a side into one tree rooted
// at the benchmark function, with its summed total.
func callTree(s *Side, k Key) (root *treeNode, total float64) {
	root = newNode("")
	var path []frame
	for _, a := range s.profiles {
		want, ok := a.resolve(k)
		if !ok {
			continue
		}
		t := a.frames
		for _, smp := range t.prof.Sample {
			v, ev := t.value(smp)
			if v == 0 || t.key(smp) != want {
				continue
			}
			total += v
			// First-party frames, root first, from the root-most benchmark frame.
			path = path[:0]
			for i := len(smp.Location) - 1; i >= 0; i-- {
				fr := t.locs.get(smp.Location[i].ID)
				for j := len(fr) - 1; j >= 0; j-- {
					if t.bench[fr[j].fn].Benchmark != "" && len(path) == 0 || len(path) > 0 && !fr[j].lib {
						path = append(path, fr[j])
					}
				}
			}
			n := root
			n.total += v
			n.totalEv += ev
			for i, fr := range path {
				name := t.names[fr.fn]
				c := n.children[name]
				if c == nil {
					c = newNode(name)
					c.benchmarkFunction = t.bench[fr.fn].Benchmark != ""
					n.children[name] = c
				}
				if i > 0 {
					sites := n.sites[name]
					if sites == nil {
						sites = map[int64]float64{}
						n.sites[name] = sites
					}
					sites[path[i-1].line] += ev
				}
				c.total += v
				c.totalEv += ev
				n = c
			}
			n.self += v
			n.selfEv += ev
		}
	}
	return root, total
}

// growthFactor is how much faster than the rest of its parent a child must
// grow, relatively, to be followed.
const growthFactor = 2

// BlameRegression walks the call trees of benchmark k on both sides, scaled
// like Compare's selection. It returns nil when the benchmark did not grow
// or has no first-party frames.
func BlameRegression(base, head *Side, sel Selection, th stat.Thresholds) *Blame {
	if sel.Bench == nil {
		return nil
	}
	broot, btotal := callTree(base, *sel.Bench)
	hroot, htotal := callTree(head, *sel.Bench)
	if btotal == 0 || htotal == 0 {
		return nil
	}
	bk, hk := scaleOr1(sel.BaseScale)/btotal, scaleOr1(sel.HeadScale)/htotal
	// The root's single child is the benchmark function, unless several
	// benchmark functions share the part (labels); start at the largest.
	b, h := largestChild(broot, hroot, bk, hk)
	if b == nil || h == nil {
		return nil
	}
	bl := &Blame{Path: []string{h.fn}}
	for {
		bl.Function = h.fn
		bl.Delta = h.total*hk - b.total*bk
		if bl.Delta <= 0 {
			bl.Why = "no growth below"
			return bl
		}
		// The categories: each child, and the node's own code.
		best, bestDelta := "", h.self*hk-b.self*bk
		for name, hc := range h.children {
			var bv float64
			if bc := b.children[name]; bc != nil {
				bv = bc.total
			}
			if d := hc.total*hk - bv*bk; d > bestDelta || d == bestDelta && best != "" && name < best {
				best, bestDelta = name, d
			}
		}
		if best == "" {
			bl.Why = "grew in its own code"
			return bl
		}
		hc := h.children[best]
		bc := b.children[best]
		if bc == nil {
			bc = newNode(best)
		}
		if !h.benchmarkFunction {
			if newCallSites(b, h, best) {
				bl.Why = "new call sites of " + best
				return bl
			}
			restB, restH := b.total-bc.total, h.total-hc.total
			rChild := relGrowth(bc.total*bk, hc.total*hk)
			rRest := relGrowth(restB*bk, restH*hk)
			p := stat.PoissonRates(bc.totalEv, b.totalEv-bc.totalEv, hc.totalEv, h.totalEv-hc.totalEv)
			if !(p < th.Alpha) || rChild < growthFactor*math.Max(rRest, 0) {
				bl.Why = "grew evenly across its callees"
				return bl
			}
		}
		b, h = bc, hc
		bl.Path = append(bl.Path, best)
	}
}

func scaleOr1(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

func largestChild(broot, hroot *treeNode, bk, hk float64) (b, h *treeNode) {
	for name, hc := range hroot.children {
		if h == nil || hc.total > h.total || hc.total == h.total && name < h.fn {
			h = hc
			b = broot.children[name]
		}
	}
	if h != nil && b == nil {
		b = newNode(h.fn)
	}
	return b, h
}

// relGrowth is head/base - 1, infinite for something new.
func relGrowth(base, head float64) float64 {
	if base <= 0 {
		if head > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return head/base - 1
}

// newCallSites reports whether most of the calls from n to child in head
// come from lines of n that the base never sampled, while n's other call
// sites match between the sides (so line numbers are comparable: the
// function was not merely moved within its file).
func newCallSites(b, h *treeNode, child string) bool {
	baseLines := map[int64]bool{}
	var baseEv, kept float64
	for _, sites := range b.sites {
		for line, ev := range sites {
			baseLines[line] = true
			baseEv += ev
		}
	}
	headLines := map[int64]bool{}
	for _, sites := range h.sites {
		for line := range sites {
			headLines[line] = true
		}
	}
	for _, sites := range b.sites {
		for line, ev := range sites {
			if headLines[line] {
				kept += ev
			}
		}
	}
	if baseEv == 0 || kept < 0.5*baseEv {
		return false
	}
	var all, fresh float64
	for line, ev := range h.sites[child] {
		all += ev
		if !baseLines[line] {
			fresh += ev
		}
	}
	bc := b.children[child]
	var grown float64 = all
	if bc != nil {
		grown = all - bc.totalEv*(h.totalEv/math.Max(b.totalEv, 1))
	}
	return fresh > 0 && fresh >= 0.5*grown
}
