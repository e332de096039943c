package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// maxDiskFullDrops bounds the hours one write may drop to fit.
const maxDiskFullDrops = 64

// DiskFullError is a write that found the disk full (ENOSPC): the store
// dropped its oldest hours to make room, and stored the write or not.
// It wraps ErrDiskFull and the write's error.
type DiskFullError struct {
	// Dropped names the hours dropped (UTC, "2026120413"), oldest first.
	Dropped []string
	// Stored tells whether the write was then stored.
	Stored bool
	Err    error
}

func (e *DiskFullError) Error() string {
	what := "dropped nothing"
	if len(e.Dropped) == 1 {
		what = fmt.Sprintf("dropped the oldest hour of data (%s)", e.Dropped[0])
	} else if len(e.Dropped) > 1 {
		what = fmt.Sprintf("dropped the oldest %d hours of data (%s to %s)", len(e.Dropped), e.Dropped[0], e.Dropped[len(e.Dropped)-1])
	}
	if e.Stored {
		return fmt.Sprintf("store: disk full: %s to store the window", what)
	}
	return fmt.Sprintf("store: disk full: %s, and the window is lost: %v", what, e.Err)
}

func (e *DiskFullError) Unwrap() []error { return []error{ErrDiskFull, e.Err} }

// update runs fn in one write transaction; on ENOSPC it drops the
// oldest hour and tries again.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("writing store %s: %w", s.path, err)
	}
	full := &DiskFullError{Err: err}
	for range maxDiskFullDrops {
		hour, derr := s.dropOldest()
		if derr != nil || hour == "" {
			if derr != nil {
				full.Err = errors.Join(err, derr)
			}
			return full
		}
		full.Dropped = append(full.Dropped, hour)
		if err = s.db.Update(fn); err == nil {
			full.Stored = true
			return full
		}
		full.Err = err
		if !errors.Is(err, syscall.ENOSPC) {
			return full
		}
	}
	return full
}

// dropOldest deletes the oldest hour bucket, returning its name ("" when
// there is none).
func (s *Store) dropOldest() (string, error) {
	var name string
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := tx.Bucket([]byte(windowsBucket))
		k, _ := w.Cursor().First()
		if k == nil {
			return nil
		}
		name = string(k)
		return w.DeleteBucket(k)
	})
	if err != nil {
		return "", err
	}
	if name != "" {
		s.noteDropped(name)
	}
	return name, nil
}

func (s *Store) noteDropped(hour string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops++
	s.dropped = append(s.dropped, hour)
	if len(s.dropped) > 16 {
		s.dropped = s.dropped[1:]
	}
}

// errUnchanged rolls back a write transaction that found nothing to
// change: bbolt's Commit writes and fsyncs the meta page and freelist
// even when nothing is dirty.
var errUnchanged = errors.New("nothing to change")

// change runs fn in a write transaction that commits only when fn says
// it changed something.
func (s *Store) change(fn func(*bolt.Tx) (bool, error)) (bool, error) {
	err := s.update(func(tx *bolt.Tx) error {
		changed, err := fn(tx)
		if err == nil && !changed {
			return errUnchanged
		}
		return err
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	if err == nil {
		s.maintainCommits.Add(1)
	}
	return err == nil, err
}

// Maintain applies the rollups, then retention by age and by size, and
// forgets services not seen since the oldest data kept. The daemon calls
// it between windows; each step is its own transaction, so it can stop
// (ctx) between them. A rollup that cannot merge a slot (windows whose
// profiles differ in kind) leaves it as it is and says so in the error.
//
// Its work is what changed since the last call, not the store's age: a
// rollup visits only the slots that ended since (Store.rolled), age
// retention reads the oldest hour's name, and a step with nothing to
// change commits nothing.
func (s *Store) Maintain(ctx context.Context) error {
	s.maintainMu.Lock()
	defer s.maintainMu.Unlock()
	s.mu.Lock()
	ret := s.opts // its retention may be replaced (SetRetention)
	s.mu.Unlock()
	now := ret.Now()
	var errs []error
	for _, r := range ret.Rollups {
		if err := s.rollup(ctx, r, now.Add(-r.After)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	dropped, err := s.dropBefore(now.Add(-ret.MaxAge))
	if err != nil {
		errs = append(errs, err)
	}
	if err := s.fitSize(ctx, ret.MaxBytes); err != nil {
		errs = append(errs, err)
	}
	// A service is last seen before the age cutoff only once the hours
	// that held it are gone: by age, or by size (dropOldest), or before
	// Open.
	if dropped || s.drops0() != s.forgotAt {
		s.forgotAt = s.drops0()
		if err := s.forgetServices(now.Add(-ret.MaxAge)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// drops0 is the hours dropped since Open, plus one: forgetServices runs
// at the first Maintain (forgotAt starts at 0).
func (s *Store) drops0() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops + 1
}

// oldestHour is the first hour bucket's name (nil: none).
func (s *Store) oldestHour() (k []byte) {
	s.db.View(func(tx *bolt.Tx) error {
		if first, _ := tx.Bucket([]byte(windowsBucket)).Cursor().First(); first != nil {
			k = bytes.Clone(first)
		}
		return nil
	})
	return k
}

// dropBefore drops every hour that ends at or before cutoff, saying
// whether it dropped any.
func (s *Store) dropBefore(cutoff time.Time) (bool, error) {
	if k := s.oldestHour(); k == nil {
		return false, nil
	} else if h, err := time.Parse(hourLayout, string(k)); err == nil && h.Add(time.Hour).After(cutoff) {
		return false, nil // the oldest hour is still young enough
	}
	var dropped []string
	changed, err := s.change(func(tx *bolt.Tx) (bool, error) {
		dropped = dropped[:0]
		w := tx.Bucket([]byte(windowsBucket))
		c := w.Cursor()
		var old [][]byte
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			h, err := time.Parse(hourLayout, string(k))
			if err == nil && h.Add(time.Hour).After(cutoff) {
				break
			}
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := w.DeleteBucket(k); err != nil {
				return false, err
			}
			dropped = append(dropped, string(k))
		}
		return len(old) > 0, nil
	})
	if err == nil {
		for _, h := range dropped {
			s.noteDropped(h)
		}
	}
	return changed, err
}

// used is the bytes of the file's pages in use (not free).
func (s *Store) used() int64 {
	var size int64
	s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return size - int64(s.db.Stats().FreeAlloc)
}

// fitSize drops the oldest hours until the pages in use fit maxBytes,
// keeping the newest hour whatever its size.
func (s *Store) fitSize(ctx context.Context, maxBytes int64) error {
	for s.used() > maxBytes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var more bool // more than one hour held
		s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(windowsBucket)).Cursor()
			if k, _ := c.First(); k != nil {
				k, _ = c.Next()
				more = k != nil
			}
			return nil
		})
		if !more {
			return nil
		}
		if _, err := s.dropOldest(); err != nil {
			return fmt.Errorf("dropping the oldest hour of %s: %w", s.path, err)
		}
	}
	return nil
}

// forgetServices removes the services last seen before cutoff.
func (s *Store) forgetServices(cutoff time.Time) error {
	_, err := s.change(func(tx *bolt.Tx) (bool, error) {
		b := tx.Bucket([]byte(servicesBucket))
		var old [][]byte
		b.ForEach(func(k, v []byte) error {
			var sv Service
			if json.Unmarshal(v, &sv) == nil && sv.Last.Before(cutoff) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return false, err
			}
		}
		return len(old) > 0, nil
	})
	return err
}

// rollup merges, hour by hour (one transaction each, committed only when
// it merged a slot), the records shorter than r.Step of every series
// whose Step-aligned slot ended by cutoff. It starts where the last
// rollup of r stopped (Store.rolled: every slot before it is merged),
// so a call visits the slots that ended since, not the store's age.
// Windows stored later into slots already rolled up (a push of old
// data) stay as they are.
func (s *Store) rollup(ctx context.Context, r Rollup, cutoff time.Time) error {
	done := s.rolled[r].Truncate(r.Step) // zero after Open: from the oldest hour
	if !done.Before(cutoff.Truncate(r.Step)) {
		return nil
	}
	var hours [][]byte
	s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(windowsBucket)).Cursor()
		for k, _ := c.Seek(hourName(done)); k != nil; k, _ = c.Next() {
			h, err := time.Parse(hourLayout, string(k))
			if err != nil {
				continue
			}
			if !h.Before(cutoff) {
				break
			}
			hours = append(hours, bytes.Clone(k))
		}
		return nil
	})
	if done.IsZero() {
		done = time.Unix(0, 0).UTC()
	}
	var errs []error
	for _, h := range hours {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.rollupHours.Add(1)
		var skipped []error
		_, err := s.change(func(tx *bolt.Tx) (bool, error) {
			hb := tx.Bucket([]byte(windowsBucket)).Bucket(h)
			if hb == nil {
				return false, nil
			}
			var series [][]byte
			hb.ForEachBucket(func(k []byte) error { series = append(series, bytes.Clone(k)); return nil })
			skipped = skipped[:0]
			changed := false
			for _, name := range series {
				merged, errs, err := s.rollupSeries(hb.Bucket(name), r.Step, done, cutoff)
				if err != nil {
					return false, err
				}
				changed = changed || merged
				for _, e := range errs {
					skipped = append(skipped, fmt.Errorf("rolling up %s %q: %w", h, strings.ReplaceAll(string(name), "\x00", " "), e))
				}
			}
			return changed, nil
		})
		if err != nil {
			return err
		}
		errs = append(errs, skipped...)
	}
	s.rolled[r] = cutoff
	return errors.Join(errs...)
}

type slotRecord struct {
	key  []byte
	head recordHead
	blob []byte
}

// rollupSeries merges the series' slots in b that start at or after
// from; what it could not merge comes back as skipped, what it could not
// write as err, and merged says whether it merged any.
func (s *Store) rollupSeries(b *bolt.Bucket, step time.Duration, from, cutoff time.Time) (merged bool, skipped []error, err error) {
	var slots [][]slotRecord
	var slot time.Time
	c := b.Cursor()
	for k, v := c.Seek(startKey(from)); k != nil; k, v = c.Next() {
		start := keyTime(k)
		h, blob, herr := decodeHead(v)
		if herr != nil || h.Duration >= step {
			continue
		}
		at := start.Truncate(step)
		if at.Add(step).After(cutoff) {
			break // this slot and the later ones are not complete yet
		}
		if len(slots) == 0 || !at.Equal(slot) {
			slots = append(slots, nil)
			slot = at
		}
		slots[len(slots)-1] = append(slots[len(slots)-1], slotRecord{bytes.Clone(k), h, blob})
	}
	for _, rs := range slots {
		if len(rs) < 2 {
			continue
		}
		key, value, merr := s.mergeSlot(rs)
		if merr != nil {
			skipped = append(skipped, fmt.Errorf("slot at %s: %w", keyTime(rs[0].key).UTC().Format(time.RFC3339), merr))
			continue
		}
		for _, r := range rs {
			if err := b.Delete(r.key); err != nil {
				return merged, skipped, err
			}
		}
		if err := b.Put(key, value); err != nil {
			return merged, skipped, err
		}
		merged = true
	}
	return merged, skipped, nil
}

// mergeSlot makes one record of a slot's.
func (s *Store) mergeSlot(rs []slotRecord) (key, value []byte, err error) {
	budget := profdecode.NewBudget(s.opts.QueryMemory)
	obs := make([]*observation.Observation, len(rs))
	summaries := make([]json.RawMessage, len(rs))
	weights := make([]float64, len(rs))
	longest := 0
	for i, r := range rs {
		if obs[i], err = observation.Unmarshal(r.blob, observation.LoadOptions{Budget: budget}); err != nil {
			return nil, nil, err
		}
		obs[i].Meta.Start = keyTime(r.key)
		obs[i].Meta.Duration = r.head.Duration
		summaries[i], weights[i] = r.head.Verdict, r.head.Duration.Seconds()
		if r.head.Duration > rs[longest].head.Duration {
			longest = i
		}
	}
	m, err := observation.Merge(obs)
	if err != nil {
		return nil, nil, err
	}
	verdict := rs[longest].head.Verdict
	if s.opts.CombineVerdicts != nil {
		verdict = s.opts.CombineVerdicts(summaries, weights)
	}
	rec := &Record{Obs: m, Verdict: verdict, Labels: rs[len(rs)-1].head.Labels}
	value, err = encode(rec, false, nil) // Merge's profiles are compact
	if err == nil && rs[0].head.HostSeries {
		value, err = setHostSeries(value)
	}
	return startKey(m.Meta.Start), value, err
}

// setHostSeries marks an encoded record as one without the host's series.
func setHostSeries(v []byte) ([]byte, error) {
	h, blob, err := decodeHead(v)
	if err != nil {
		return nil, err
	}
	h.HostSeries = true
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint([]byte{recordVersion}, uint64(len(head)))
	return append(append(out, head...), blob...), nil
}
