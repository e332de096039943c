// Package store keeps the agent's windows on the host's disk, in one
// bbolt file (DIR/perfhound.db): per window, one record per (service,
// version) and one for the host, each an observation (observation.Marshal)
// with the window's verdict summary beside it, so that the chart of a
// service's verdicts reads no profile.
//
// Crash safety is bbolt's: a window is one fsync'd transaction, written
// copy-on-write, so kill -9 loses at most the window in flight and the
// file opens again as it was after the last commit, with nothing to
// replay or repair. The choice of bbolt over one saved observation
// directory per window was made on measurement (docs/benchmarks.md).
//
// Layout: bucket "w" holds one bucket per hour ("2026120413", UTC), which
// holds one bucket per series (service NUL version; the host's is a lone
// NUL), whose keys are the windows' starts (8 bytes, big-endian Unix
// nanoseconds): a series' windows are appended in order, a range of one
// service is a few seeks, and age retention drops whole hours. Bucket
// "services" maps a service's name to what Services returns; bucket
// "regressions" a finding's ID to the finding (findings.go).
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// FileName is the store's file in its directory.
const FileName = "perfhound.db"

// Sentinel errors; test them with errors.Is.
var (
	// ErrLocked is a store another process (or another Store of this
	// one) has open.
	ErrLocked = errors.New("store in use by another process")
	// ErrDiskFull is a write that found the disk full: see DiskFullError.
	ErrDiskFull = errors.New("disk full")
	// ErrBadRecord is a record Put refuses (no observation, a service
	// name that is empty or holds a NUL).
	ErrBadRecord = errors.New("bad record")
)

// Rollup merges the windows of a series older than After into windows of
// Step: each Step-aligned slot's records become one, their observations
// merged (observation.Merge) and their verdicts combined.
type Rollup struct {
	After time.Duration
	Step  time.Duration
}

// Options configure a Store. Zero fields take the defaults.
type Options struct {
	// MaxAge drops windows older than this (default 7 days).
	MaxAge time.Duration
	// MaxBytes bounds the pages in use: the oldest hours are dropped
	// until the data fits (default 2 GiB). The file keeps its high-water
	// size; freed pages are reused.
	MaxBytes int64
	// Rollups, in increasing After (default: 10 s windows kept 6 h, then
	// 1 min until 48 h, then 10 min). Steps divide an hour.
	Rollups []Rollup
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LockTimeout is how long Open waits for another holder of the file
	// to let go (default 1 s).
	LockTimeout time.Duration
	// QueryMemory bounds what one read decodes: its profiles' parsed
	// size, counted before they are parsed (default 1 GiB).
	QueryMemory int64
	// CombineVerdicts makes one verdict summary of a rollup's records'
	// ones, weighted by their seconds (the daemon passes
	// verdict.Combine); nil keeps the longest record's.
	CombineVerdicts func(summaries []json.RawMessage, weights []float64) json.RawMessage
}

// DefaultRollups are the rollups of Options' zero value.
var DefaultRollups = []Rollup{{After: 6 * time.Hour, Step: time.Minute}, {After: 48 * time.Hour, Step: 10 * time.Minute}}

func (o Options) withDefaults() (Options, error) {
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 2 << 30
	}
	if o.Rollups == nil {
		o.Rollups = DefaultRollups
	}
	for i, r := range o.Rollups {
		if r.Step <= 0 || time.Hour%r.Step != 0 || r.After <= 0 || (i > 0 && (r.After <= o.Rollups[i-1].After || r.Step <= o.Rollups[i-1].Step)) {
			return o, fmt.Errorf("rollup %d (after %s, step %s): steps must divide an hour and both grow from one rollup to the next", i, r.After, r.Step)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.QueryMemory <= 0 {
		o.QueryMemory = 1 << 30
	}
	return o, nil
}

// Store is an open store. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	mu      sync.Mutex // counters, and opts' retention (SetRetention)
	dropped []string   // hours dropped for space or age since Open, latest last (bounded)
	drops   int64

	// Maintain's state (under maintainMu): rolled is, per rollup, the
	// cutoff it last merged through (every slot ending by it is merged;
	// none after Open: it starts at the oldest hour); forgotAt the drops
	// (drops0) at forgetServices' last run.
	maintainMu sync.Mutex
	rolled     map[Rollup]time.Time
	forgotAt   int64
	// Counters for tests: Maintain's commits and the hours its rollups
	// visited.
	maintainCommits, rollupHours atomic.Int64
}

// Record is one series' part of one window.
type Record struct {
	// Service and Version name the series; both "" for the host.
	Service, Version string
	// Start and Duration are the window's (its observation's Meta).
	Start    time.Time
	Duration time.Duration
	Obs      *observation.Observation
	// Verdict is the window's verdict summary, opaque to the store.
	Verdict json.RawMessage
	// Labels are the series' labels (Pyroscope's conventions).
	Labels map[string]string
	// HostSeries, on a record read back, says that Obs lacks the host's
	// series (host.*, watcher.*) that a process split carries: Put keeps
	// them once per window, in the host's record (HostRange), and Merged
	// puts them back.
	HostSeries bool
}

// Batch is one window: every series' record and the host's.
type Batch struct {
	Host    *Record
	Records []Record
}

// Open opens (creating it and dir if need be) the store in dir. A store
// another process has open is ErrLocked after Options.LockTimeout.
func Open(dir string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening store %s: %w (another perfhound agent on the same data directory?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{windowsBucket, servicesBucket, findingsBucket} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	return &Store{db: db, path: path, opts: opts, rolled: map[Rollup]time.Time{}}, nil
}

// SetRetention replaces the retention (MaxAge, MaxBytes and Rollups of
// o, zero values taking the defaults as in Open) from the next Maintain
// on: a reloaded config's. The store's other options stay as opened.
func (s *Store) SetRetention(o Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.opts
	next.MaxAge, next.MaxBytes, next.Rollups = o.MaxAge, o.MaxBytes, o.Rollups
	next, err := next.withDefaults()
	if err != nil {
		return fmt.Errorf("setting the store's retention: %w", err)
	}
	s.opts.MaxAge, s.opts.MaxBytes, s.opts.Rollups = next.MaxAge, next.MaxBytes, next.Rollups
	return nil
}

// Close closes the store; a window being written is finished first.
func (s *Store) Close() error { return s.db.Close() }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

const (
	windowsBucket  = "w"
	servicesBucket = "services"
	hourLayout     = "2006010215"
	recordVersion  = 1
)

func hourName(t time.Time) []byte { return []byte(t.UTC().Format(hourLayout)) }

func seriesName(service, version string) []byte { return []byte(service + "\x00" + version) }

// hostSeries is the host's series bucket: a name no service can have.
var hostSeries = []byte("\x00")

func startKey(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

// recordHead is what precedes a record's blob: what Verdicts reads.
type recordHead struct {
	Duration time.Duration     `json:"d"`
	Labels   map[string]string `json:"l,omitempty"`
	Verdict  json.RawMessage   `json:"v,omitempty"`
	// HostSeries is set when the host's series were left out of the
	// record: the host's record of the window holds them.
	HostSeries bool `json:"hs,omitempty"`
}

// encode is a record's value: a version byte, its head's length and
// head, then its observation. Profiles are compacted first: a process
// split from a host window shares the host's whole symbol table, which
// would be stored again in every record.
func encode(r *Record, compact bool, hostSeries map[string]bool) ([]byte, error) {
	o := *r.Obs
	elided := false
	if hostSeries != nil {
		o.Series = nil
		for _, s := range r.Obs.Series {
			if s.Labels["pid"] == "" && hostSeries[seriesKey(s)] {
				elided = true
				continue
			}
			o.Series = append(o.Series, s)
		}
	}
	o.Profiles = make([]observation.Profile, len(r.Obs.Profiles))
	for i, p := range r.Obs.Profiles {
		if p.Profile != nil && compact {
			p.Profile = observation.Prune(p.Profile, p.Profile.Sample)
		}
		o.Profiles[i] = p
	}
	blob, err := observation.Marshal(&o)
	if err != nil {
		return nil, err
	}
	head, err := json.Marshal(recordHead{Duration: r.Obs.Meta.Duration, Labels: r.Labels, Verdict: r.Verdict, HostSeries: elided})
	if err != nil {
		return nil, err
	}
	v := binary.AppendUvarint([]byte{recordVersion}, uint64(len(head)))
	v = append(v, head...)
	return append(v, blob...), nil
}

// decodeHead splits a record's value into its head and its blob.
func decodeHead(v []byte) (recordHead, []byte, error) {
	var h recordHead
	if len(v) == 0 || v[0] != recordVersion {
		return h, nil, fmt.Errorf("record of an unknown version")
	}
	n, m := binary.Uvarint(v[1:])
	if m <= 0 || n > uint64(len(v)-1-m) {
		return h, nil, fmt.Errorf("record truncated")
	}
	if err := json.Unmarshal(v[1+m:1+m+int(n)], &h); err != nil {
		return h, nil, fmt.Errorf("record head: %w", err)
	}
	return h, v[1+m+int(n):], nil
}

// seriesKey is a series' name and labels.
func seriesKey(s observation.Series) string {
	k := string(s.Name)
	for _, l := range slices.Sorted(maps.Keys(s.Labels)) {
		k += "\x00" + l + "=" + s.Labels[l]
	}
	return k
}

func checkRecord(r *Record, host bool) error {
	switch {
	case r.Obs == nil:
		return fmt.Errorf("%w: %s has no observation", ErrBadRecord, r.name())
	case !host && (r.Service == "" || strings.ContainsRune(r.Service, 0) || strings.ContainsRune(r.Version, 0)):
		return fmt.Errorf("%w: service %q version %q (a service needs a name, and no NUL in either)", ErrBadRecord, r.Service, r.Version)
	}
	return nil
}

func (r *Record) name() string {
	if r.Service == "" {
		return "the host's record"
	}
	return fmt.Sprintf("service %s version %s", r.Service, r.Version)
}

// Put stores one window in one fsync'd transaction: all of it, or, on
// an error, none of it. A full disk drops the oldest hours and tries
// again: the error is then a *DiskFullError saying what was dropped and
// whether the window was stored.
func (s *Store) Put(b Batch) error {
	type kv struct {
		series, key, value []byte
		hour               []byte
		rec                *Record
	}
	var kvs []kv
	// A process's split carries the host's series (for its USE table):
	// stored once, in the host's record, they are a third of a window's
	// bytes instead of two thirds (docs/benchmarks.md).
	var hostKeys map[string]bool
	if b.Host != nil && b.Host.Obs != nil {
		hostKeys = map[string]bool{}
		for _, s := range b.Host.Obs.Series {
			hostKeys[seriesKey(s)] = true
		}
	}
	add := func(r *Record, host bool) error {
		if err := checkRecord(r, host); err != nil {
			return err
		}
		elide := hostKeys
		if host {
			elide = nil
		}
		v, err := encode(r, true, elide)
		if err != nil {
			return fmt.Errorf("storing %s: %w", r.name(), err)
		}
		series := hostSeries
		if !host {
			series = seriesName(r.Service, r.Version)
		}
		kvs = append(kvs, kv{series, startKey(r.Obs.Meta.Start), v, hourName(r.Obs.Meta.Start), r})
		return nil
	}
	if b.Host != nil {
		if err := add(b.Host, true); err != nil {
			return err
		}
	}
	for i := range b.Records {
		if err := add(&b.Records[i], false); err != nil {
			return err
		}
	}
	write := func(tx *bolt.Tx) error {
		w := tx.Bucket([]byte(windowsBucket))
		for _, e := range kvs {
			hb, err := w.CreateBucketIfNotExists(e.hour)
			if err != nil {
				return err
			}
			sb, err := hb.CreateBucketIfNotExists(e.series)
			if err != nil {
				return err
			}
			sb.FillPercent = 0.95 // windows come in time order: appends
			if err := sb.Put(e.key, e.value); err != nil {
				return err
			}
			if e.rec.Service != "" {
				if err := noteService(tx, e.rec); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return s.update(write)
}

// Service is what Services says of one.
type Service struct {
	Name     string    `json:"name"`
	First    time.Time `json:"first_seen"`
	Last     time.Time `json:"last_seen"`
	Versions []Version `json:"versions"`
	// Verdict is the summary of its latest window.
	Verdict json.RawMessage `json:"verdict,omitempty"`
}

// Version is one version of a service.
type Version struct {
	Version string            `json:"version"`
	First   time.Time         `json:"first_seen"`
	Last    time.Time         `json:"last_seen"`
	Labels  map[string]string `json:"labels,omitempty"`
}

func noteService(tx *bolt.Tx, r *Record) error {
	b := tx.Bucket([]byte(servicesBucket))
	var sv Service
	if v := b.Get([]byte(r.Service)); v != nil {
		if err := json.Unmarshal(v, &sv); err != nil {
			sv = Service{} // a damaged entry is made anew
		}
	}
	start, end := r.Obs.Meta.Start.UTC(), r.Obs.Meta.Start.Add(r.Obs.Meta.Duration).UTC()
	sv.Name = r.Service
	if sv.First.IsZero() || start.Before(sv.First) {
		sv.First = start
	}
	if end.After(sv.Last) || sv.Last.IsZero() {
		sv.Last = end
		if r.Verdict != nil {
			sv.Verdict = r.Verdict
		}
	}
	found := false
	for i := range sv.Versions {
		v := &sv.Versions[i]
		if v.Version != r.Version {
			continue
		}
		found = true
		if start.Before(v.First) {
			v.First = start
		}
		if end.After(v.Last) {
			v.Last = end
		}
		if r.Labels != nil {
			v.Labels = maps.Clone(r.Labels)
		}
	}
	if !found {
		sv.Versions = append(sv.Versions, Version{Version: r.Version, First: start, Last: end, Labels: maps.Clone(r.Labels)})
	}
	v, err := json.Marshal(sv)
	if err != nil {
		return err
	}
	return b.Put([]byte(r.Service), v)
}
