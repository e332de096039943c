package store

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// What the forwarders (agent/forward) read: the keys of the services'
// records, one record by its key, and a cursor per sink in a bucket of
// its own ("cursors"), made at the first SetCursor.

const cursorsBucket = "cursors"

// Key names one service record: its series and its start.
type Key struct {
	Service, Version string
	Start            time.Time
}

// Compare orders keys by start, then service, then version.
func (k Key) Compare(o Key) int {
	return cmp.Or(k.Start.Compare(o.Start), strings.Compare(k.Service, o.Service), strings.Compare(k.Version, o.Version))
}

// Keys returns the keys of the services' records (not the host's) that
// start in [from, to), in Key.Compare's order. No record is decoded.
func (s *Store) Keys(from, to time.Time) ([]Key, error) {
	var out []Key
	err := s.EachKey(from, to, func(k Key) bool { out = append(out, k); return true })
	slices.SortFunc(out, Key.Compare)
	return out, err
}

// EachKey calls fn with the key of every service record (not the host's)
// that starts in [from, to), hour by hour, each hour's in no set order,
// until fn returns false. No record is decoded, nothing is held: a
// count over a week of keys costs no memory.
func (s *Store) EachKey(from, to time.Time, fn func(Key) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		w := tx.Bucket([]byte(windowsBucket))
		hc := w.Cursor()
		last := hourName(to)
		from0 := startKey(from)
		for hk, _ := hc.Seek(hourName(from)); hk != nil && bytes.Compare(hk, last) <= 0; hk, _ = hc.Next() {
			hb := w.Bucket(hk)
			if hb == nil {
				continue
			}
			sc := hb.Cursor()
			for name, v := sc.First(); name != nil; name, v = sc.Next() {
				if v != nil || bytes.Equal(name, hostSeries) {
					continue // not a series bucket, or the host's
				}
				service, version, _ := strings.Cut(string(name), "\x00")
				rc := hb.Bucket(name).Cursor()
				for k, _ := rc.Seek(from0); k != nil; k, _ = rc.Next() {
					start := keyTime(k)
					if !start.Before(to) {
						break
					}
					if !fn(Key{Service: service, Version: version, Start: start}) {
						return nil
					}
				}
			}
		}
		return nil
	})
}

// Newest returns the start of the newest record of any series (zero when
// the store is empty), and of the host's newest record (zero when none):
// the daemon stores a window's records together, and every later
// window's records start after its host record, so that a forwarder
// that has listed every record up to the host's newest start has seen
// all that will ever start before it.
func (s *Store) Newest() (any, host time.Time, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		w := tx.Bucket([]byte(windowsBucket))
		hc := w.Cursor()
		hk, _ := hc.Last()
		// The newest hour, and the one before for the host's record (a
		// window's records go in the hour each starts in).
		for i := 0; i < 2 && hk != nil && host.IsZero(); i, hk = i+1, nextPrev(hc) {
			hb := w.Bucket(hk)
			if hb == nil {
				continue
			}
			err := hb.ForEachBucket(func(name []byte) error {
				k, _ := hb.Bucket(name).Cursor().Last()
				if k == nil {
					return nil
				}
				t := keyTime(k)
				if t.After(any) {
					any = t
				}
				if bytes.Equal(name, hostSeries) && t.After(host) {
					host = t
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return any, host, err
}

func nextPrev(c *bolt.Cursor) []byte {
	k, _ := c.Prev()
	return k
}

// Get reads the record of k, its profiles decoded within budget (nil: a
// budget of Options.QueryMemory); ErrNoData when it is not stored (any
// more: retention, a rollup).
func (s *Store) Get(k Key, budget *profdecode.Budget) (Record, error) {
	if k.Service == "" || strings.ContainsRune(k.Service, 0) || strings.ContainsRune(k.Version, 0) {
		return Record{}, fmt.Errorf("store get: service %q version %q: %w", k.Service, k.Version, ErrBadRecord)
	}
	name := seriesName(k.Service, k.Version)
	rs, err := s.scan(k.Start, k.Start.Add(1), nil, budget, func(n []byte) bool { return bytes.Equal(n, name) }, name)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 {
		return Record{}, fmt.Errorf("service %s version %s at %s: %w", k.Service, k.Version, k.Start.Format(time.RFC3339Nano), ErrNoData)
	}
	return rs[0], nil
}

// Cursor returns what SetCursor last stored under name (nil: nothing).
func (s *Store) Cursor(name string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(cursorsBucket)); b != nil {
			v = bytes.Clone(b.Get([]byte(name)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading cursor %q in %s: %w", name, s.path, err)
	}
	return v, nil
}

// SetCursor stores v under name in one fsync'd transaction.
func (s *Store) SetCursor(name string, v []byte) error {
	if name == "" {
		return fmt.Errorf("setting a cursor: %w: no name", ErrBadRecord)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(cursorsBucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return fmt.Errorf("setting cursor %q: %w", name, err)
	}
	return nil
}
