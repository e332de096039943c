package pprofui

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// The Source view lists the source files a profile names, read by pprof
// itself with os.Open: there is no hook to give it files another way. Left
// alone it opens any absolute name as is, and looks for a relative one in
// the source path and every parent of it up to "/", so a crafted profile
// naming /etc/shadow would have it shown to whoever can reach the UI.
//
// So pprof never reads a real file. It is run with -trim_path=/ (every
// absolute name becomes relative) and -source_path set to a private
// snapshot directory, and before its Source view runs, every name the
// profile gives pprof to open exists in that snapshot: as a copy of the
// real file when that file lies under a source root the user gave, and as
// an empty file otherwise (pprof's normal view of a source it cannot find:
// the lines it has samples for, without their text). pprof finds each name
// at its first try and never climbs to the real file system. Names that
// would leave the snapshot (leading "..", "//", NUL) are rewritten in the
// copy of the profile pprof is given.

// Limits of the snapshot: a file larger than maxSourceFile, or beyond
// maxSourceTotal copied in the run, is shown as unavailable.
const (
	maxSourceFile  = 16 << 20
	maxSourceTotal = 256 << 20
)

// sourceRoot is one directory whose files the Source view may show.
type sourceRoot struct {
	path string   // absolute, symlinks resolved
	root *os.Root // opens beneath path only, whatever is renamed meanwhile
}

// sources is the snapshot the Source view reads from, and the rule of what
// may be copied into it.
type sources struct {
	dir   string // pprof's -source_path
	roots []sourceRoot
	log   func(string)

	// mu is held for writing while the snapshot changes, and for reading
	// while pprof reads it: a placeholder being replaced by a directory is
	// missing for an instant, and pprof would then look for the real file.
	mu     sync.RWMutex
	laid   map[string]bool // names (relative to dir) already there
	copied int64           // bytes copied so far
	full   bool            // maxSourceTotal was reached (said once)
}

// openRoots resolves the source roots the user gave: each must be a
// directory; symlinks in its path are resolved, so that a file's resolved
// path can be compared with it.
func openRoots(dirs []string) ([]sourceRoot, error) {
	var roots []sourceRoot
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("source root %s: %w", d, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			closeRoots(roots)
			return nil, fmt.Errorf("source root: %w", err)
		}
		r, err := os.OpenRoot(real)
		if err != nil {
			closeRoots(roots)
			return nil, fmt.Errorf("source root: %w", err)
		}
		roots = append(roots, sourceRoot{path: real, root: r})
	}
	return roots, nil
}

func closeRoots(roots []sourceRoot) {
	for _, r := range roots {
		r.root.Close()
	}
}

// pprofCanonical is how pprof's Source view names a file
// (report.canonicalizeFileName), which it then opens.
func pprofCanonical(name string) string {
	name = strings.TrimPrefix(name, "/proc/self/cwd/")
	name = strings.TrimPrefix(name, "./")
	return filepath.Clean(name)
}

// opened returns what pprof opens, relative to the source path, for a
// function's file name: the name itself (the lines of inlined calls) and
// its canonical form (the listing), each with one leading "/" trimmed
// (-trim_path=/). An absolute result would be opened as is.
func opened(name string) [2]string {
	return [2]string{strings.TrimPrefix(name, "/"), strings.TrimPrefix(pprofCanonical(name), "/")}
}

// staysInSnapshot says whether every file pprof opens for name is inside
// the source path and can be laid out there: "" and "." are the directory
// itself, which pprof opens and reads nothing from.
func staysInSnapshot(name string) bool {
	if strings.ContainsRune(name, 0) || len(name) > 1024 {
		return false
	}
	for _, o := range opened(name) {
		if o != "" && !filepath.IsLocal(o) {
			return false
		}
		for _, part := range strings.Split(o, "/") {
			if len(part) > 255 {
				return false
			}
		}
	}
	return true
}

// safeName is the file name pprof is given for a function's: the name
// itself when everything pprof opens for it stays in the snapshot (every
// real profile's), else its canonical form without leading ".." (a
// crafted one's, or a C compiler's "../src/x.c"), else "".
func safeName(name string) string {
	for range 4 {
		if staysInSnapshot(name) {
			return name
		}
		name = pprofCanonical(name)
		for name == ".." || strings.HasPrefix(name, "../") {
			name = strings.TrimPrefix(strings.TrimPrefix(name, ".."), "/")
		}
	}
	if staysInSnapshot(name) {
		return name
	}
	return ""
}

// serve runs view (pprof's Source view) once every file pprof may open
// for the file names given is in the snapshot, and while none changes.
func (s *sources) serve(names []string, view func()) error {
	if err := s.layout(names); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	view()
	return nil
}

// layout makes every file pprof may open for the file names given (all
// safe) exist in the snapshot, so that pprof finds each at its first try.
// It fails rather than leave one out.
func (s *sources) layout(names []string) error {
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, n := range names {
		for _, o := range opened(n) {
			if o == "" || filepath.Clean(o) == "." {
				continue
			}
			// safeName made every name so; anything else would lead pprof
			// out of the snapshot.
			if !filepath.IsLocal(o) {
				return fmt.Errorf("preparing the source view: file name %q leaves the snapshot", n)
			}
			o = filepath.Clean(o)
			files[o] = true
			for d := filepath.Dir(o); d != "."; d = filepath.Dir(d) {
				dirs[d] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range dirs {
		if err := s.mkdirs(d); err != nil {
			return err
		}
	}
	for f := range files {
		// A name that is also another's directory stays a directory:
		// pprof opens it and reads no lines.
		if dirs[f] || s.laid[f] {
			continue
		}
		if err := s.place(f); err != nil {
			return err
		}
		s.laid[f] = true
	}
	return nil
}

// mkdirs makes rel and its parents directories of the snapshot, replacing
// an empty placeholder that an earlier profile left where this one needs a
// directory.
func (s *sources) mkdirs(rel string) error {
	path := s.dir
	for _, part := range strings.Split(rel, "/") {
		path = filepath.Join(path, part)
		err := os.Mkdir(path, 0o700)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			if err != nil {
				return fmt.Errorf("preparing the source view: %w", err)
			}
			continue
		}
		if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
			continue
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("preparing the source view: %w", err)
		}
		if err := os.Mkdir(path, 0o700); err != nil {
			return fmt.Errorf("preparing the source view: %w", err)
		}
		rel, _ := filepath.Rel(s.dir, path)
		delete(s.laid, rel)
	}
	return nil
}

// place writes the snapshot's file rel: a copy of the real file it stands
// for if that may be shown, else an empty file.
func (s *sources) place(rel string) error {
	dst, err := os.OpenFile(filepath.Join(s.dir, rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		if fi, serr := os.Lstat(filepath.Join(s.dir, rel)); serr == nil && fi.IsDir() {
			return nil // another profile's directory: pprof reads nothing from it
		}
		return fmt.Errorf("preparing the source view: %w", err)
	}
	defer dst.Close()
	src, size := s.open(rel)
	if src == nil {
		return nil
	}
	defer src.Close()
	if s.copied+size > maxSourceTotal {
		if !s.full && s.log != nil {
			s.log(fmt.Sprintf("pprofui: the source view's copies reached %d MiB: further files are shown as unavailable", maxSourceTotal>>20))
		}
		s.full = true
		return nil
	}
	n, err := io.Copy(dst, io.LimitReader(src, maxSourceFile+1))
	s.copied += n
	if err != nil || n > maxSourceFile {
		// Unreadable, or it grew past the limit: unavailable, not half shown.
		if terr := dst.Truncate(0); terr != nil {
			return fmt.Errorf("preparing the source view: %w", terr)
		}
	}
	return nil
}

// open returns the real file that rel (a name pprof opens, relative to the
// snapshot) stands for, if it may be shown, with its size: "/"+rel (an
// absolute name in the profile) or rel under a source root (a relative
// one), when its path, cleaned and with symlinks resolved, lies under a
// source root and it is a regular file of at most maxSourceFile. It is
// opened through the root, so a symlink swapped in meanwhile cannot lead
// out of it.
func (s *sources) open(rel string) (*os.File, int64) {
	cands := []string{"/" + rel}
	for _, r := range s.roots {
		cands = append(cands, filepath.Join(r.path, rel))
	}
	for _, c := range cands {
		real, err := filepath.EvalSymlinks(c)
		if err != nil {
			continue
		}
		for _, r := range s.roots {
			under, err := filepath.Rel(r.path, real)
			if err != nil || !filepath.IsLocal(under) {
				continue
			}
			// O_NONBLOCK: a FIFO must not hang the request.
			f, err := r.root.OpenFile(under, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				continue
			}
			fi, err := f.Stat()
			if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSourceFile {
				f.Close()
				continue
			}
			return f, fi.Size()
		}
	}
	return nil, 0
}
