package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// ErrNoData is a range that holds no window of the series asked for.
var ErrNoData = errors.New("no data")

// Query selects one service's records over a time range.
type Query struct {
	// Service is required; Version "" means every version.
	Service, Version string
	// From and To bound the range: the records that start in [From, To).
	// A record belongs to one range only, so ranges that tile a longer
	// one (the API's chunks) read each window once.
	From, To time.Time
	// Kinds keeps only these profile kinds (nil: all); the others are not
	// decoded.
	Kinds []observation.ProfileKind
	// WithHost has Merged put back the host's series over the range,
	// which a process's records leave out (Record.HostSeries): a
	// diagnosis wants them for its USE table, a profile does not.
	WithHost bool
	// Budget bounds what decoding the records' profiles may spend (the
	// API's per-chunk budget); nil: a budget of Options.QueryMemory.
	Budget *profdecode.Budget
}

func keyTime(k []byte) time.Time {
	if len(k) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
}

// Range returns the records of q, oldest first within each series, the
// series in name order. Their profiles are decoded within
// Options.QueryMemory (profdecode.ErrOverBudget past it: narrow the range
// or the kinds).
func (s *Store) Range(q Query) ([]Record, error) {
	if q.Service == "" || strings.ContainsRune(q.Service, 0) {
		return nil, fmt.Errorf("store range: service %q: %w", q.Service, ErrBadRecord)
	}
	prefix := []byte(q.Service + "\x00")
	exact := []byte(nil)
	if q.Version != "" {
		exact = seriesName(q.Service, q.Version)
	}
	return s.scan(q.From, q.To, q.Kinds, q.Budget, func(name []byte) bool {
		if exact != nil {
			return bytes.Equal(name, exact)
		}
		return bytes.HasPrefix(name, prefix)
	}, prefix)
}

// HostRange returns the host's records that start in [from, to), with the
// profiles of kinds (none: all).
func (s *Store) HostRange(from, to time.Time, kinds ...observation.ProfileKind) ([]Record, error) {
	if len(kinds) == 0 {
		kinds = nil
	}
	return s.scan(from, to, kinds, nil, func(name []byte) bool { return bytes.Equal(name, hostSeries) }, hostSeries)
}

// Merged is Range's records merged into one observation
// (observation.Merge), with the host's series over the range put back
// when q.WithHost (Put keeps them once, in the host's record); ErrNoData
// when there is no record.
func (s *Store) Merged(q Query) (*observation.Observation, error) {
	rs, err := s.Range(q)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("service %s from %s to %s: %w", q.Service, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), ErrNoData)
	}
	obs := make([]*observation.Observation, len(rs))
	elided := false
	for i := range rs {
		obs[i] = rs[i].Obs
		elided = elided || rs[i].HostSeries
	}
	m, err := observation.Merge(obs)
	if err != nil || !elided || !q.WithHost {
		return m, err
	}
	hs, err := s.HostSeries(q.From, q.To)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, sr := range m.Series {
		have[seriesKey(sr)] = true
	}
	for _, sr := range hs {
		if !have[seriesKey(sr)] {
			m.Series = append(m.Series, sr)
		}
	}
	return m, nil
}

// HostSeries returns the host's own series (those without a pid label)
// over the windows that start in [from, to), merged across windows: what
// a service's records leave out (Record.HostSeries), for a diagnosis of
// the service over the range. No profile is decoded.
func (s *Store) HostSeries(from, to time.Time) ([]observation.Series, error) {
	hosts, err := s.scan(from, to, []observation.ProfileKind{}, nil, func(name []byte) bool { return bytes.Equal(name, hostSeries) }, hostSeries)
	if err != nil || len(hosts) == 0 {
		return nil, err
	}
	hobs := make([]*observation.Observation, len(hosts))
	for i := range hosts {
		hobs[i] = &observation.Observation{Meta: hosts[i].Obs.Meta, Series: hosts[i].Obs.Series}
	}
	hm, err := observation.Merge(hobs)
	if err != nil {
		return nil, fmt.Errorf("merging the host's series: %w", err)
	}
	return slices.DeleteFunc(hm.Series, func(sr observation.Series) bool { return sr.Labels["pid"] != "" }), nil
}

// VerdictPoint is one record's verdict, for a chart.
type VerdictPoint struct {
	Start    time.Time       `json:"start"`
	Duration time.Duration   `json:"duration_ns"`
	Version  string          `json:"version"`
	Verdict  json.RawMessage `json:"verdict"`
}

// Verdicts returns the verdicts of a service's records that start in
// [from, to), in time order, without decoding any observation.
func (s *Store) Verdicts(service string, from, to time.Time) ([]VerdictPoint, error) {
	if service == "" || strings.ContainsRune(service, 0) {
		return nil, fmt.Errorf("store verdicts: service %q: %w", service, ErrBadRecord)
	}
	prefix := []byte(service + "\x00")
	var out []VerdictPoint
	err := s.db.View(func(tx *bolt.Tx) error {
		return s.walk(tx, from, to, prefix, func(name []byte) bool { return bytes.HasPrefix(name, prefix) },
			func(name []byte, start time.Time, h recordHead, _ []byte) error {
				out = append(out, VerdictPoint{Start: start, Duration: h.Duration, Version: string(name[len(prefix):]), Verdict: bytes.Clone(h.Verdict)})
				return nil
			})
	})
	slices.SortStableFunc(out, func(a, b VerdictPoint) int { return a.Start.Compare(b.Start) })
	return out, err
}

// scan decodes the records of the series match accepts that start in
// [from, to), within budget (nil: one of Options.QueryMemory).
func (s *Store) scan(from, to time.Time, kinds []observation.ProfileKind, budget *profdecode.Budget, match func([]byte) bool, seek []byte) ([]Record, error) {
	if budget == nil {
		budget = profdecode.NewBudget(s.opts.QueryMemory)
	}
	opt := observation.LoadOptions{Budget: budget}
	type item struct {
		name  []byte
		start time.Time
		head  recordHead
		blob  []byte // bbolt's memory: valid until the transaction ends
	}
	var (
		items []item
		out   []Record
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		err := s.walk(tx, from, to, seek, match, func(name []byte, start time.Time, h recordHead, blob []byte) error {
			items = append(items, item{name, start, h, blob})
			return nil
		})
		if err != nil {
			return err
		}
		// Decoding is most of a query's time (an hour of off-CPU
		// profiles: 80%): the records are decoded on every CPU, within
		// the one budget, before the transaction ends.
		out = make([]Record, len(items))
		errs := make([]error, len(items))
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), len(items)) {
			wg.Go(func() {
				for i := range next {
					it := items[i]
					var o *observation.Observation
					var err error
					if kinds == nil {
						o, err = observation.Unmarshal(it.blob, opt)
					} else {
						o, err = observation.UnmarshalKinds(it.blob, opt, kinds...)
					}
					if err != nil {
						errs[i] = fmt.Errorf("reading %s at %s: %w", seriesText(it.name), it.start.Format(time.RFC3339), err)
						continue
					}
					service, version, _ := strings.Cut(string(it.name), "\x00")
					out[i] = Record{Service: service, Version: version, Start: it.start, Duration: it.head.Duration,
						Obs: o, Verdict: bytes.Clone(it.head.Verdict), Labels: it.head.Labels, HostSeries: it.head.HostSeries}
				}
			})
		}
		for i := range items {
			next <- i
		}
		close(next)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err // the first, in the records' order
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Hour by hour, then series by series: put each series in time order.
	slices.SortStableFunc(out, func(a, b Record) int {
		if c := strings.Compare(a.Service+"\x00"+a.Version, b.Service+"\x00"+b.Version); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
	return out, nil
}

func seriesText(name []byte) string {
	if bytes.Equal(name, hostSeries) {
		return "the host's record"
	}
	service, version, _ := strings.Cut(string(name), "\x00")
	return "service " + service + " version " + version
}

// walk calls fn on every record of the matching series that starts in
// [from, to). A record is kept in the hour it starts in, so from's hour
// is the first to read.
func (s *Store) walk(tx *bolt.Tx, from, to time.Time, seek []byte, match func([]byte) bool,
	fn func(name []byte, start time.Time, h recordHead, blob []byte) error) error {
	w := tx.Bucket([]byte(windowsBucket))
	first, last := hourName(from), hourName(to)
	hc := w.Cursor()
	for hk, _ := hc.Seek(first); hk != nil && bytes.Compare(hk, last) <= 0; hk, _ = hc.Next() {
		hb := w.Bucket(hk)
		if hb == nil {
			continue
		}
		sc := hb.Cursor()
		for name, _ := sc.Seek(seek); name != nil && bytes.HasPrefix(name, seek); name, _ = sc.Next() {
			sb := hb.Bucket(name)
			if sb == nil || !match(name) {
				continue
			}
			rc := sb.Cursor()
			for k, v := rc.First(); k != nil; k, v = rc.Next() {
				start := keyTime(k)
				if !start.Before(to) {
					break
				}
				if start.Before(from) {
					continue
				}
				h, blob, err := decodeHead(v)
				if err != nil {
					return fmt.Errorf("reading %s at %s in %s: %w", seriesText(name), start.Format(time.RFC3339), s.path, err)
				}
				if err := fn(name, start, h, blob); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Services returns every service stored, by name.
func (s *Store) Services() ([]Service, error) {
	var out []Service
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(servicesBucket)).ForEach(func(k, v []byte) error {
			var sv Service
			if err := json.Unmarshal(v, &sv); err != nil {
				return fmt.Errorf("reading service %q in %s: %w", k, s.path, err)
			}
			out = append(out, sv)
			return nil
		})
	})
	return out, err
}

// Stats is what /metrics shows of the store.
type Stats struct {
	// FileBytes is the file's size, UsedBytes its pages in use.
	FileBytes, UsedBytes int64
	// Hours counts the hour buckets. (No count of records: that walked
	// every series' pages on each /metrics scrape.)
	Hours int
	// Oldest and Newest are the first and last hours held (zero: none).
	Oldest, Newest time.Time
	// DroppedHours counts the hours dropped (age, size, full disk)
	// since Open; LastDropped names the latest ones.
	DroppedHours int64
	LastDropped  []string
}

// Stats counts what the store holds: the hours' names, no page walk.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		st.FileBytes = tx.Size()
		w := tx.Bucket([]byte(windowsBucket))
		return w.ForEachBucket(func(hk []byte) error {
			h, _ := time.Parse(hourLayout, string(hk))
			if st.Oldest.IsZero() {
				st.Oldest = h
			}
			st.Newest = h
			st.Hours++
			return nil
		})
	})
	st.UsedBytes = st.FileBytes - int64(s.db.Stats().FreeAlloc)
	s.mu.Lock()
	st.DroppedHours, st.LastDropped = s.drops, slices.Clone(s.dropped)
	s.mu.Unlock()
	return st, err
}

// Check verifies the whole file's structure (bbolt's tx.Check): every
// page reachable once, no page both free and in use.
func (s *Store) Check() error {
	var errs []error
	s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if len(errs) > 0 {
		return fmt.Errorf("checking %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}
