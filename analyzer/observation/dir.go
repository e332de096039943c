package observation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/regfile"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// The directory format:
//
//	DIR/observation.json      format, version, meta, series, histograms, missing, profile index
//	DIR/profiles/NAME.pb.gz   one gzipped pprof file per profile
//
// Version is bumped whenever a reader of the previous version would
// misread the new one. Point times are kept to the millisecond, in UTC.
const (
	Format  = "perfhound.observation"
	Version = 1

	indexFile   = "observation.json"
	profilesDir = "profiles"

	// maxIndexBytes bounds what Load reads of observation.json, and
	// maxProfileBytes each profile: an observation of a busy host for a
	// long window stays far below both.
	maxIndexBytes   = 256 << 20
	maxProfileBytes = 256 << 20
)

// Errors Load wraps, so that callers can tell a directory that is not an
// observation from one that is damaged.
var (
	ErrNotObservation = errors.New("not a perfhound observation")
	ErrVersion        = errors.New("unsupported observation version")
	ErrDamaged        = errors.New("damaged observation")
	// ErrNotRegular is a FIFO, socket or device where a file should be.
	ErrNotRegular = regfile.ErrNotRegular
)

type index struct {
	Format     string      `json:"format"`
	Version    int         `json:"version"`
	Meta       Meta        `json:"meta"`
	Profiles   []profEntry `json:"profiles"`
	Series     []Series    `json:"series"`
	Histograms []Histogram `json:"histograms"`
	Missing    []Missing   `json:"missing"`
}

type profEntry struct {
	Profile
	File string `json:"file"` // relative to DIR
}

// Save writes o to dir, creating it. It writes everything into a
// temporary directory beside dir, syncs it, then moves it into place; an
// observation already at dir is moved aside first and removed last. A
// crash leaves the old observation, the new one, or both (the old one
// under a hidden name beside dir), never a half-written one at dir.
// A directory that is not an observation is never overwritten.
func Save(o *Observation, dir string) error {
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := write(o, tmp); err != nil {
		return fmt.Errorf("saving observation to %s: %w", dir, err)
	}
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("saving observation: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fmt.Errorf("saving observation: %w", err)
	}
	syncDir(parent)
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// CanSave reports, before a window is spent watching, why Save to dir
// would fail: dir is not an observation and not empty, or its parent
// cannot be written.
func CanSave(dir string) error {
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	for {
		st, err := os.Stat(parent)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("saving observation: %s is not a directory", parent)
			}
			probe, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".probe-")
			if err != nil {
				return fmt.Errorf("saving observation: %w", err)
			}
			return os.Remove(probe)
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(parent) == parent {
			return fmt.Errorf("saving observation: %w", err)
		}
		parent = filepath.Dir(parent) // Save creates the missing parents
	}
}

// checkReplaceable refuses to overwrite a directory that is not empty and
// not an observation: Save must never delete someone's files.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	b, err := readCapped(filepath.Join(dir, indexFile), maxIndexBytes)
	var head struct {
		Format string `json:"format"`
	}
	if err != nil || json.Unmarshal(b, &head) != nil || head.Format != Format {
		return fmt.Errorf("saving observation: %s exists and is not an observation; not overwriting it", dir)
	}
	return nil
}

// syncFile writes data to path and flushes it to the disk.
func syncFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes a directory's entries (best effort: not every
// filesystem allows it).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

func write(o *Observation, dir string) error {
	if err := os.Mkdir(filepath.Join(dir, profilesDir), 0o755); err != nil {
		return err
	}
	ix := index{
		Format:     Format,
		Version:    Version,
		Meta:       o.Meta,
		Series:     o.Series,
		Histograms: o.Histograms,
		Missing:    o.Missing,
	}
	for i, p := range o.Profiles {
		if p.Profile == nil {
			return fmt.Errorf("profile %d (%s) is nil", i, p.Kind)
		}
		// Numbered, so that no two profiles can share a file whatever
		// their kinds and sources are called.
		rel := filepath.Join(profilesDir, fmt.Sprintf("%03d-%s.pb.gz", i, fileName(p.Kind, p.Source)))
		var buf bytes.Buffer
		if err := p.Profile.Write(&buf); err != nil {
			return fmt.Errorf("profile %s: %w", rel, err)
		}
		if err := syncFile(filepath.Join(dir, rel), buf.Bytes()); err != nil {
			return err
		}
		ix.Profiles = append(ix.Profiles, profEntry{Profile: p, File: filepath.ToSlash(rel)})
	}
	b, err := json.MarshalIndent(ix, "", " ")
	if err != nil {
		return err
	}
	if err := syncFile(filepath.Join(dir, indexFile), append(b, '\n')); err != nil {
		return err
	}
	syncDir(filepath.Join(dir, profilesDir))
	syncDir(dir)
	return nil
}

// fileName makes a profile's file name from its kind and source, keeping
// only characters that are safe in a path.
func fileName(kind, source string) string {
	clean := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				b[i] = '_'
			}
		}
		if len(b) == 0 {
			return "unknown"
		}
		return string(b)
	}
	return clean(source) + "-" + clean(kind)
}

// LoadOptions bound what LoadWith may spend.
type LoadOptions struct {
	// Budget, when not nil, is the memory the run may spend: each file's
	// bytes while it is read, and each parsed profile (counted from its
	// samples, locations and the like before it is parsed) for as long as
	// the observation holds it. Share one between the observations of a
	// run.
	Budget *profdecode.Budget
	// Limits bound each profile; zero fields take profdecode.DefaultLimits.
	Limits profdecode.Limits
}

// Load is LoadWith with no run budget and the default limits.
func Load(dir string) (*Observation, error) { return LoadWith(dir, LoadOptions{}) }

// LoadWith reads an observation saved by Save. Errors name the file at
// fault and wrap ErrNotObservation, ErrVersion or ErrDamaged, or
// profdecode's ErrTooLarge or ErrOverBudget for a profile too costly to
// parse. Only regular files are read (a FIFO, socket or device in their
// place is ErrNotRegular, never opened for a blocking read), and each
// profile file once: an index naming a file twice is damaged, as it would
// make one small file cost its parse many times.
func LoadWith(dir string, opt LoadOptions) (*Observation, error) {
	path := filepath.Join(dir, indexFile)
	b, charged, err := readCharged(path, maxIndexBytes, opt.Budget)
	defer opt.Budget.Refund(charged)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s)", dir, ErrNotObservation, indexFile)
	}
	if errors.Is(err, ErrNotRegular) {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	if err != nil {
		return nil, err
	}
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrDamaged, err)
	}
	if head.Format != Format {
		return nil, fmt.Errorf("%s: %w (format %q)", path, ErrNotObservation, head.Format)
	}
	if head.Version != Version {
		return nil, fmt.Errorf("%s: %w %d (this perfhound reads version %d)", path, ErrVersion, head.Version, Version)
	}
	var ix index
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrDamaged, err)
	}
	files, err := profileFiles(dir, path, ix.Profiles)
	if err != nil {
		return nil, err
	}
	o := &Observation{Meta: ix.Meta, Series: ix.Series, Histograms: ix.Histograms, Missing: ix.Missing}
	var kept int64
	for i, e := range ix.Profiles {
		p, cost, err := loadProfile(files[i], opt)
		if err != nil {
			opt.Budget.Refund(kept)
			return nil, err
		}
		kept += cost
		e.Profile.Profile = p
		o.Profiles = append(o.Profiles, e.Profile)
	}
	return o, nil
}

// loadProfile reads and parses one profile file within opt, and returns
// what stays charged to opt.Budget for it. The file's bytes, gzipped and
// inflated, are charged while they are in memory and refunded after.
func loadProfile(file string, opt LoadOptions) (*profile.Profile, int64, error) {
	lim := opt.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = maxProfileBytes
	}
	data, charged, err := readCharged(file, lim.MaxBytes, opt.Budget)
	defer func() { opt.Budget.Refund(charged) }()
	if err != nil {
		return nil, 0, profileError("", err) // err names file
	}
	if profdecode.IsGzip(data) {
		raw := charged
		data, charged, err = profdecode.GunzipCharged(data, lim.MaxBytes, opt.Budget)
		opt.Budget.Refund(raw)
		if err != nil {
			return nil, 0, profileError(file, err)
		}
	}
	p, cost, err := profdecode.Decode(data, lim, opt.Budget)
	if err != nil {
		return nil, 0, profileError(file, err)
	}
	return p, cost.Memory(), nil
}

// profileError names file in err (unless file is "": err names it), and
// calls the observation damaged unless the profile is sound and only too
// costly to hold.
func profileError(file string, err error) error {
	prefix := ""
	if file != "" {
		prefix = file + ": "
	}
	if errors.Is(err, profdecode.ErrTooLarge) || errors.Is(err, profdecode.ErrOverBudget) {
		return fmt.Errorf("%s%w", prefix, err)
	}
	return fmt.Errorf("%s%w: %w", prefix, ErrDamaged, err)
}

// profileFiles checks the index's profile entries before any is read, and
// returns their paths: each inside dir, existing, and a file of its own
// (by device and inode, so no two names, links or spellings of one file).
func profileFiles(dir, index string, entries []profEntry) ([]string, error) {
	files := make([]string, len(entries))
	seen := map[regfile.ID]int{}
	for i, e := range entries {
		rel := filepath.FromSlash(e.File)
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: %w: profile path %q leaves the directory", index, ErrDamaged, e.File)
		}
		files[i] = filepath.Join(dir, rel)
		st, err := os.Stat(files[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
		}
		id, ok := regfile.IDOf(st)
		if !ok {
			continue
		}
		if first, dup := seen[id]; dup {
			as := ""
			if files[first] != files[i] {
				as = ", the second as " + files[i]
			}
			return nil, fmt.Errorf("%s: %w: %s is named more than once (profile entries %d and %d%s)", index, ErrDamaged, files[first], first+1, i+1, as)
		}
		seen[id] = i
	}
	return files, nil
}

// readCapped reads the regular file path whole, up to limit bytes. Errors
// name path.
func readCapped(path string, limit int64) ([]byte, error) {
	b, _, err := readCharged(path, limit, nil)
	return b, err
}

// readCharged is readCapped charging b for the bytes read; charged is
// what to refund once they are dropped.
func readCharged(path string, limit int64, b *profdecode.Budget) (data []byte, charged int64, err error) {
	data, charged, err = regfile.Read(path, limit, b)
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return data, charged, err
}

// MarshalJSON writes a point as [unix milliseconds, value], which keeps
// long series compact. A value that is not a number is an error: a signal
// that could not be measured belongs in Missing, not in a series.
func (p Point) MarshalJSON() ([]byte, error) {
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return nil, fmt.Errorf("point at %s: value %v is not a number", p.Time.Format(time.RFC3339), p.Value)
	}
	return json.Marshal([2]float64{float64(p.Time.UnixMilli()), p.Value})
}

// UnmarshalJSON reads [unix milliseconds, value].
func (p *Point) UnmarshalJSON(b []byte) error {
	var v [2]float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("point: %w", err)
	}
	p.Time = time.UnixMilli(int64(v[0])).UTC()
	p.Value = v[1]
	return nil
}
