package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// MaxFindings bounds the regressions the store keeps: past it the oldest
// resolved ones go first, then the oldest still active. A finding is a
// few KB of JSON, so the bucket stays under a few MB however long the
// agent runs.
const MaxFindings = 1000

// findingsBucket maps a finding's ID to its JSON (regress.Finding).
const findingsBucket = "regressions"

// PutFindings stores findings by ID in one fsync'd transaction, all or
// none: a new ID is added; a known one is replaced, keeping its earliest
// DetectedAt (the same regression found again, after a restart, from the
// same windows, is the same finding) and, once resolved, its resolution
// (a resolved regression is history: it is not raised again under its
// ID). It returns what changed, as stored: the findings new to the store
// and those it now holds as resolved that it held as active, the events
// a reader (the webhook, the log) has not seen. Past MaxFindings the
// oldest resolved findings are dropped, then the oldest active ones. A
// full disk is as for Put: a *DiskFullError, with what changed when it
// says the findings were stored after all.
func (s *Store) PutFindings(fs []regress.Finding) (changed []regress.Finding, err error) {
	for _, f := range fs {
		if f.ID == "" {
			return nil, fmt.Errorf("%w: a finding of service %q (%s) without an ID", ErrBadRecord, f.Service, f.Kind)
		}
	}
	err = s.update(func(tx *bolt.Tx) error {
		changed = changed[:0]
		b := tx.Bucket([]byte(findingsBucket))
		for _, f := range fs {
			next, isNew := f, true
			if v := b.Get([]byte(f.ID)); v != nil {
				var old regress.Finding
				if json.Unmarshal(v, &old) == nil { // a damaged one is replaced
					isNew = false
					next = mergeFinding(old, f)
					if next.Resolved == old.Resolved && next.DetectedAt.Equal(old.DetectedAt) && sameFinding(old, next) {
						continue
					}
					if next.Resolved && !old.Resolved {
						changed = append(changed, next)
					}
				}
			}
			if isNew {
				changed = append(changed, next)
			}
			v, err := json.Marshal(next)
			if err != nil {
				return fmt.Errorf("storing finding %s: %w", f.ID, err)
			}
			if err := b.Put([]byte(f.ID), v); err != nil {
				return err
			}
		}
		return evictFindings(b, MaxFindings)
	})
	var full *DiskFullError
	if err != nil && !(errors.As(err, &full) && full.Stored) {
		return nil, err
	}
	return changed, err
}

// mergeFinding is next stored over old, the same ID.
func mergeFinding(old, next regress.Finding) regress.Finding {
	if old.DetectedAt.Before(next.DetectedAt) {
		next.DetectedAt = old.DetectedAt
	}
	if old.Resolved {
		if !next.Resolved {
			return old
		}
		next.ResolvedAt, next.ResolvedBy = old.ResolvedAt, old.ResolvedBy
	}
	return next
}

// sameFinding tells whether a and b store the same JSON: a window that
// changed nothing writes nothing.
func sameFinding(a, b regress.Finding) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// evictFindings drops findings past max: the resolved ones first, then
// the active ones, each the oldest detected first.
func evictFindings(b *bolt.Bucket, max int) error {
	// Counted with a cursor: Bucket.Stats reads the committed pages, not
	// this transaction's writes.
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	if n <= max {
		return nil
	}
	type entry struct {
		id       []byte
		resolved bool
		f        regress.Finding
	}
	var es []entry
	err := b.ForEach(func(k, v []byte) error {
		var f regress.Finding
		if json.Unmarshal(v, &f) != nil {
			es = append(es, entry{id: slices.Clone(k), resolved: true}) // unreadable: first to go
			return nil
		}
		es = append(es, entry{id: slices.Clone(k), resolved: f.Resolved, f: f})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(es, func(a, b entry) int {
		if a.resolved != b.resolved {
			if a.resolved {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.f.ResolvedAt.UnixNano(), b.f.ResolvedAt.UnixNano()); a.resolved && c != 0 {
			return c
		}
		if c := a.f.DetectedAt.Compare(b.f.DetectedAt); c != 0 {
			return c
		}
		return cmp.Compare(string(a.id), string(b.id))
	})
	for _, e := range es[:len(es)-max] {
		if err := b.Delete(e.id); err != nil {
			return err
		}
	}
	return nil
}

// Findings returns every regression stored, the earliest detected first.
func (s *Store) Findings() ([]regress.Finding, error) {
	var out []regress.Finding
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(findingsBucket)).ForEach(func(k, v []byte) error {
			var f regress.Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("reading regression %q in %s: %w", k, s.path, err)
			}
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b regress.Finding) int {
		if c := a.DetectedAt.Compare(b.DetectedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}
