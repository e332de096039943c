package forward

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/perfhound/perfhound/agent/store"
)

// cursor is a sink's progress through the store: which records are
// done (acknowledged, refused, or given up as older than the ingestion
// window). Done records are spans of time, every record starting in
// which is done, plus the records done one by one outside them: those a
// delivery sent before it finished its span (an outage in the middle,
// the newest windows first after one), and those above the store's
// frontier, whose span cannot be closed yet (store.Newest).
type cursor struct {
	done []span           // ascending, disjoint, not touching
	sent map[sentKey]bool // done records outside done
}

// span is [lo, hi) in Unix nanoseconds.
type span struct{ lo, hi int64 }

type sentKey struct {
	Service string `json:"s"`
	Version string `json:"v"`
	Start   int64  `json:"t"`
}

func keyOf(k store.Key) sentKey { return sentKey{k.Service, k.Version, k.Start.UnixNano()} }

// cursorJSON is the cursor as stored (store.SetCursor).
type cursorJSON struct {
	Done [][2]int64 `json:"done"`
	Sent []sentKey  `json:"sent,omitempty"`
}

func newCursor() *cursor { return &cursor{sent: map[sentKey]bool{}} }

func (c *cursor) marshal() ([]byte, error) {
	j := cursorJSON{Done: make([][2]int64, len(c.done))}
	for i, s := range c.done {
		j.Done[i] = [2]int64{s.lo, s.hi}
	}
	j.Sent = slices.SortedFunc(maps.Keys(c.sent), func(a, b sentKey) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Version, b.Version))
	})
	return json.Marshal(j)
}

func unmarshalCursor(b []byte) (*cursor, error) {
	c := newCursor()
	if len(b) == 0 {
		return c, nil
	}
	var j cursorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("reading the cursor: %w", err)
	}
	for _, s := range j.Done {
		c.markRange(s[0], s[1])
	}
	for _, k := range j.Sent {
		if !c.covered(k.Start) {
			c.sent[k] = true
		}
	}
	return c, nil
}

// covered tells whether t is in a done span.
func (c *cursor) covered(t int64) bool {
	i, _ := slices.BinarySearchFunc(c.done, t, func(s span, t int64) int {
		if s.hi <= t {
			return -1
		}
		if s.lo > t {
			return 1
		}
		return 0
	})
	return i < len(c.done) && c.done[i].lo <= t && t < c.done[i].hi
}

// isDone tells whether the record of k is done.
func (c *cursor) isDone(k store.Key) bool {
	return c.covered(k.Start.UnixNano()) || c.sent[keyOf(k)]
}

// markKey records the record of k as done.
func (c *cursor) markKey(k store.Key) {
	if !c.covered(k.Start.UnixNano()) {
		c.sent[keyOf(k)] = true
	}
}

// markRange records every record starting in [lo, hi) as done, merging
// spans that meet and forgetting the single records now inside one.
func (c *cursor) markRange(lo, hi int64) {
	if hi <= lo {
		return
	}
	out := make([]span, 0, len(c.done)+1)
	cur := span{lo, hi}
	placed := false
	for _, s := range c.done {
		switch {
		case s.hi < cur.lo:
			out = append(out, s)
		case s.lo > cur.hi:
			if !placed {
				out = append(out, cur)
				placed = true
			}
			out = append(out, s)
		default: // overlapping or touching
			cur.lo, cur.hi = min(cur.lo, s.lo), max(cur.hi, s.hi)
		}
	}
	if !placed {
		out = append(out, cur)
	}
	c.done = out
	for k := range c.sent {
		if k.Start >= cur.lo && k.Start < cur.hi {
			delete(c.sent, k)
		}
	}
}

// gaps returns the parts of [from, to) no done span covers, ascending.
func (c *cursor) gaps(from, to int64) []span {
	var out []span
	at := from
	for _, s := range c.done {
		if s.hi <= at {
			continue
		}
		if s.lo >= to {
			break
		}
		if s.lo > at {
			out = append(out, span{at, s.lo})
		}
		at = s.hi
	}
	if at < to {
		out = append(out, span{at, to})
	}
	return out
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
