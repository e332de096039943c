package input

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/perfhound/perfhound/analyzer/internal/regfile"
)

// walker collects the files of a load. It follows symlinks, to files and
// to directories, reads each directory once (so a symlink cycle ends) and
// each file once (so a run linked twice is not counted twice), and keeps
// a note for every entry it does not read.
type walker struct {
	dirs    map[regfile.ID]string // directory read → path it was read as
	files   map[regfile.ID]string // file kept → path it was kept as
	skipped []string
}

// source is one file to read. A file found by walking a directory that
// turns out not to be a regular file when opened (it changed since the
// walk) is skipped, as the walk would have skipped it; a file named as an
// argument is an error.
type source struct {
	path   string
	walked bool
}

// found is a regular file a walk found, before sorting.
type found struct {
	path string
	id   regfile.ID
	ok   bool // id is known
}

// expand turns arguments into the files to read, in order: each argument
// in turn, a directory's files sorted by path. A directory is walked
// recursively, entries whose name starts with "." are skipped; what the
// walk skips (hidden entries, FIFOs, sockets, devices, broken symlinks, a
// directory or file already read through another path) is listed in
// skipped, one note each. An argument that does not exist is a *FileError;
// an argument that is not a regular file is refused when it is read.
func expand(paths []string) (files []source, skipped []string, err error) {
	w := &walker{dirs: map[regfile.ID]string{}, files: map[regfile.ID]string{}}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, &FileError{File: p, Err: unwrapPathError(err)}
		}
		if !st.IsDir() {
			if w.keep(p, st) {
				files = append(files, source{path: p})
			}
			continue
		}
		var in []found
		if err := w.dir(p, st, &in); err != nil {
			return nil, nil, err
		}
		sort.Slice(in, func(i, j int) bool { return in[i].path < in[j].path })
		for _, f := range in {
			if !f.ok || w.keepID(f.path, f.id) {
				files = append(files, source{path: f.path, walked: true})
			}
		}
	}
	return files, w.skipped, nil
}

// keep reports whether the file at path is read: not when it is a file
// already kept under another path.
func (w *walker) keep(path string, fi fs.FileInfo) bool {
	id, ok := regfile.IDOf(fi)
	return !ok || w.keepID(path, id)
}

func (w *walker) keepID(path string, id regfile.ID) bool {
	if first, seen := w.files[id]; seen {
		w.skip(path, "the same file as "+first)
		return false
	}
	w.files[id] = path
	return true
}

func (w *walker) skip(path, why string) {
	w.skipped = append(w.skipped, path+": "+why+", skipped")
}

// skipNote is the note for a file skipped for err.
func skipNote(path string, err error) string { return path + ": " + err.Error() + ", skipped" }

// dir walks the directory at path (st is its os.Stat), adding the regular
// files it finds to out.
func (w *walker) dir(path string, st fs.FileInfo, out *[]found) error {
	if id, ok := regfile.IDOf(st); ok {
		if first, seen := w.dirs[id]; seen {
			w.skip(path, "the directory "+first+" again (a symlink loop or a second link)")
			return nil
		}
		w.dirs[id] = path
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return &FileError{File: path, Err: unwrapPathError(err)}
	}
	for _, e := range entries {
		child := filepath.Join(path, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			w.skip(child, "hidden")
			continue
		}
		st, err := os.Stat(child) // follows symlinks
		if err != nil {
			if e.Type()&fs.ModeSymlink != 0 {
				w.skip(child, "broken symlink ("+describe(err)+")")
				continue
			}
			return &FileError{File: child, Err: unwrapPathError(err)}
		}
		switch {
		case st.IsDir():
			if err := w.dir(child, st, out); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			id, ok := regfile.IDOf(st)
			*out = append(*out, found{path: child, id: id, ok: ok})
		default:
			w.skipped = append(w.skipped, skipNote(child, regfile.Check(st.Mode())))
		}
	}
	return nil
}

// describe is err without the path os puts in it.
func describe(err error) string {
	err = unwrapPathError(err)
	var errno syscall.Errno
	if errors.As(err, &errno) && errno == syscall.ELOOP {
		return "a symlink loop"
	}
	return err.Error()
}
