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
)

// The directory format:
//
//	DIR/observation.json      format, version, meta, series, histograms, missing, profile index
//	DIR/profiles/NAME.pb.gz   one gzipped pprof file per profile
//
// Version is bumped whenever a reader of the previous version would
// misread the new one.
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

// Save writes o to dir, creating it. It writes into a temporary
// directory beside dir and renames it into place, so a crash leaves
// either the old directory or the new one, never a half-written one.
// An existing dir is replaced only if it holds an observation.
func Save(o *Observation, dir string) error {
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := write(o, tmp); err != nil {
		return fmt.Errorf("saving observation to %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	return nil
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
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err != nil {
		return fmt.Errorf("saving observation: %s exists and is not an observation; not overwriting it", dir)
	}
	return nil
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
	used := map[string]int{}
	for i, p := range o.Profiles {
		if p.Profile == nil {
			return fmt.Errorf("profile %d (%s) is nil", i, p.Kind)
		}
		name := fileName(p.Kind, p.Source)
		used[name]++
		if n := used[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		rel := filepath.Join(profilesDir, name+".pb.gz")
		var buf bytes.Buffer
		if err := p.Profile.Write(&buf); err != nil {
			return fmt.Errorf("profile %s: %w", rel, err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), buf.Bytes(), 0o644); err != nil {
			return err
		}
		ix.Profiles = append(ix.Profiles, profEntry{Profile: p, File: filepath.ToSlash(rel)})
	}
	b, err := json.MarshalIndent(ix, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, indexFile), append(b, '\n'), 0o644)
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

// Load reads an observation saved by Save. Errors name the file at fault
// and wrap ErrNotObservation, ErrVersion or ErrDamaged.
func Load(dir string) (*Observation, error) {
	path := filepath.Join(dir, indexFile)
	b, err := readCapped(path, maxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s)", dir, ErrNotObservation, indexFile)
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
	o := &Observation{Meta: ix.Meta, Series: ix.Series, Histograms: ix.Histograms, Missing: ix.Missing}
	for _, e := range ix.Profiles {
		rel := filepath.FromSlash(e.File)
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: %w: profile path %q leaves the directory", path, ErrDamaged, e.File)
		}
		pb, err := readCapped(filepath.Join(dir, rel), maxProfileBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		p, err := profile.ParseData(pb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", filepath.Join(dir, rel), ErrDamaged, err)
		}
		e.Profile.Profile = p
		o.Profiles = append(o.Profiles, e.Profile)
	}
	return o, nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d this reader accepts", path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
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
