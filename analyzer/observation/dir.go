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
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/input"
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

// Errors Save, Replace and CanSave wrap, so that callers can tell a
// directory that holds an observation already from one holding someone's
// files.
var (
	ErrExists   = errors.New("already holds an observation")
	ErrOccupied = errors.New("directory not empty")
)

// Save writes o to dir, which must not exist (it is created, with its
// parents) or be empty. It writes everything into a temporary directory
// beside dir, syncs it, then renames it into place, so that a crash
// leaves no half-written observation at dir. It refuses a dir that holds
// an observation already (ErrExists; Replace replaces one) and a dir that
// holds anything else (ErrOccupied).
func Save(o *Observation, dir string) error { return save(o, dir, false) }

// Replace is Save that may replace an observation already at dir. Only
// what the format wrote is ever deleted: a dir that holds anything besides
// observation.json and the profiles its index lists (a user's notes, a
// stray file) is refused with ErrOccupied, and the old observation's files
// are removed one by one, never as a tree. A crash leaves the old
// observation, the new one, or both (the old one under a hidden name
// beside dir), never a half-written one at dir.
func Replace(o *Observation, dir string) error { return save(o, dir, true) }

func save(o *Observation, dir string, replace bool) error {
	dir, err := resolve(dir)
	if err != nil {
		return err
	}
	if _, err := ownFiles(dir, replace); err != nil {
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
	defer os.RemoveAll(tmp) // only what write wrote: gone once renamed
	if err := write(o, tmp); err != nil {
		return fmt.Errorf("saving observation to %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("saving observation: %w", err)
		}
		syncDir(parent)
		return nil
	}
	// dir exists, empty or an observation: move it aside, check again
	// that it holds only what the format wrote (a file may have been
	// added since), put the new one in place, then remove the old one's
	// files.
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("saving observation: %w", err)
	}
	files, err := ownFiles(old, replace)
	if err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("%w (and moving it back from %s: %v)", err, old, rerr)
		}
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("saving observation: %w (and moving the old one back from %s: %v)", err, old, rerr)
		}
		return fmt.Errorf("saving observation: %w", err)
	}
	syncDir(parent)
	removeOwn(old, files)
	return nil
}

// CanSave reports, before a window is spent watching, why Save (or
// Replace, with replace) to dir would fail: dir holds an observation or
// other files, or no directory can be made or written where dir would go.
func CanSave(dir string, replace bool) error {
	dir, err := resolve(dir)
	if err != nil {
		return err
	}
	if _, err := ownFiles(dir, replace); err != nil {
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

// resolve cleans dir and, when it is a symbolic link, follows it: the
// directory it points to is the one replaced, not the link.
func resolve(dir string) (string, error) {
	dir = filepath.Clean(dir)
	if st, err := os.Lstat(dir); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return "", fmt.Errorf("saving observation: %w", err)
		}
		return real, nil
	}
	return dir, nil
}

// ownFiles checks that dir is missing, empty, or (with replace) an
// observation holding nothing but the files the format wrote, and returns
// those files, relative to dir, directories last.
func ownFiles(dir string, replace bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saving observation: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	b, err := readCapped(filepath.Join(dir, indexFile), maxIndexBytes)
	var head struct {
		Format   string `json:"format"`
		Profiles []struct {
			File string `json:"file"`
		} `json:"profiles"`
	}
	if err != nil || json.Unmarshal(b, &head) != nil || head.Format != Format {
		return nil, fmt.Errorf("saving observation: %s is not an observation: %w; not overwriting it", dir, ErrOccupied)
	}
	if !replace {
		return nil, fmt.Errorf("saving observation: %s %w", dir, ErrExists)
	}
	listed := map[string]bool{}
	for _, p := range head.Profiles {
		listed[filepath.ToSlash(filepath.Clean(filepath.FromSlash(p.File)))] = true
	}
	var files, dirs, foreign []string
	for _, e := range entries {
		switch {
		case e.Name() == indexFile && e.Type().IsRegular():
			files = append(files, indexFile)
		case e.Name() == profilesDir && e.IsDir():
			profs, err := os.ReadDir(filepath.Join(dir, profilesDir))
			if err != nil {
				return nil, fmt.Errorf("saving observation: %w", err)
			}
			for _, p := range profs {
				rel := filepath.Join(profilesDir, p.Name())
				if !p.Type().IsRegular() || !listed[filepath.ToSlash(rel)] {
					foreign = append(foreign, entryName(rel, p))
					continue
				}
				files = append(files, rel)
			}
			dirs = append(dirs, profilesDir)
		default:
			foreign = append(foreign, entryName(e.Name(), e))
		}
	}
	if len(foreign) > 0 {
		if len(foreign) > 5 {
			foreign = append(foreign[:5], fmt.Sprintf("and %d more", len(foreign)-5))
		}
		return nil, fmt.Errorf("saving observation: %s: %w: %s not part of its observation (move away what is yours, or save elsewhere)",
			dir, ErrOccupied, strings.Join(foreign, ", "))
	}
	return append(files, dirs...), nil
}

// entryName is a directory entry's name for a message, with a slash
// after a directory's.
func entryName(name string, e fs.DirEntry) string {
	if e.IsDir() {
		return name + string(filepath.Separator)
	}
	return name
}

// removeOwn removes the files an old observation's format wrote, one by
// one, then dir itself: a file that was not among them stays, and so
// does dir with it.
func removeOwn(dir string, files []string) {
	for _, f := range files {
		os.Remove(filepath.Join(dir, f))
	}
	os.Remove(dir)
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
		p, err := input.DecodeProfile(pb, maxProfileBytes)
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
