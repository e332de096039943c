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

// IsSaved reports whether dir holds a saved observation, by its marker:
// an index file (observation.json) that is not a directory. A stat is
// enough to tell an observation directory from others (compare chooses
// its comparison by it); Load then says what is wrong with a damaged one
// (an index that is a FIFO, or not an observation's).
func IsSaved(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, indexFile))
	return err == nil && !st.IsDir()
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
		rel := filepath.Join(profilesDir, fmt.Sprintf("%03d-%s.pb.gz", i, fileName(string(p.Kind), string(p.Source))))
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
