package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// errNotSaved ends a command that made its results but could not write
// one of them where asked: each went somewhere else, named in the error,
// and the command exits exitNotSaved.
var errNotSaved = errors.New("not saved where asked")

// pseudoFS names the kernel's filesystems by their statfs magic: a file
// there is an interface of the kernel, not a place for a report (writing
// /proc/self/comm renames perfhound; a directory made in /sys/fs/cgroup is
// a cgroup).
var pseudoFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "procfs",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroupfs",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.BPF_FS_MAGIC:        "bpffs",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.EFIVARFS_MAGIC:      "efivarfs",
}

// checkPlace refuses a path on one of the kernel's pseudo-filesystems,
// judged by its nearest existing directory.
func checkPlace(flag, path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		dir = path
	}
	for {
		var fs unix.Statfs_t
		err := unix.Statfs(dir, &fs)
		if err == nil {
			if name, ok := pseudoFS[int64(fs.Type)]; ok {
				return fmt.Errorf("%s %s: %s is the kernel's %s, not a place for files", flag, path, dir, name)
			}
			return nil
		}
		if up := filepath.Dir(dir); up != dir && errors.Is(err, unix.ENOENT) {
			dir = up
			continue
		}
		return nil // the checks that follow name the problem
	}
}

// checkOutput fails early, before a window is spent, when the report file
// could not be written: its directory is missing, not writable or the
// kernel's, or the file is a directory. It makes and removes a file
// beside the report, as writeOutput will.
func checkOutput(path string) error {
	if path == "" {
		return nil
	}
	if err := checkPlace("--output", path); err != nil {
		return err
	}
	target := resolveLink(path)
	st, err := os.Stat(target)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("--output %s is a directory", path)
	case err == nil && !st.Mode().IsRegular():
		// A device or a pipe (/dev/stdout, a process substitution) is
		// written in place.
		if err := unix.Access(target, unix.W_OK); err != nil {
			return fmt.Errorf("--output %s: cannot write it: %w", path, err)
		}
		return nil
	}
	dir := filepath.Dir(target)
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("--output %s: cannot write in %s: %w", path, dir, err)
	}
	f, err := createBeside(target, ".probe-")
	if err != nil {
		return fmt.Errorf("--output %s: cannot write in %s: %w", path, dir, err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("--output %s: removing the test file: %w", path, err)
	}
	return nil
}

// checkSave is observation.CanSave, with the kernel's filesystems refused.
func checkSave(dir string, overwrite bool) error {
	if err := checkPlace("--save", dir); err != nil {
		return err
	}
	err := observation.CanSave(dir, overwrite)
	if errors.Is(err, observation.ErrExists) {
		return usageError{fmt.Errorf("%w: add --overwrite to replace it", err)}
	}
	return err
}

// resolveLink follows path when it is a symbolic link, so that the file
// it points to is replaced rather than the link.
func resolveLink(path string) string {
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			return real
		}
	}
	return path
}

// createBeside creates a new file in path's directory, named after it,
// readable as the report will be.
func createBeside(path, infix string) (*os.File, error) {
	dir, base := filepath.Split(path)
	var err error
	for range 100 {
		name := filepath.Join(dir, "."+base+infix+strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
		var f *os.File
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, err
}

// writeOutput writes data to the report file at path: into a new file
// beside it, synced, then renamed over it, so that a failure (a full
// disk, a directory gone) leaves the previous file as it was and no
// partial one. A device or a pipe is written in place.
func writeOutput(path string, data []byte) error {
	target := resolveLink(path)
	st, err := os.Stat(target)
	if err == nil && !st.Mode().IsRegular() {
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	f, err := createBeside(target, ".new-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if st != nil {
		// An existing report keeps its permissions.
		if err := f.Chmod(st.Mode().Perm()); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), target); err != nil {
		return err
	}
	done = true
	return nil
}

// writeOrKeep writes a rendered report to path and, when that fails,
// keeps it: in a new file in the temporary directory, or on stdout when
// even that fails. The error, wrapping errNotSaved, says where it went.
func writeOrKeep(stdout io.Writer, path, ext string, data []byte) error {
	err := writeOutput(path, data)
	if err == nil {
		return nil
	}
	if f, terr := os.CreateTemp("", "perfhound-report-*"+ext); terr == nil {
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil && cerr == nil {
			return fmt.Errorf("%w: writing the report to %s: %v; it is in %s instead", errNotSaved, path, err, f.Name())
		}
		os.Remove(f.Name())
	}
	if _, werr := stdout.Write(data); werr != nil {
		return fmt.Errorf("%w: writing the report to %s: %v; and to stdout: %v", errNotSaved, path, err, werr)
	}
	return fmt.Errorf("%w: writing the report to %s: %v; it is on stdout instead", errNotSaved, path, err)
}

// saveOrKeep saves an observation to dir and, when that fails, keeps it
// in a new directory in the temporary directory. The error wraps
// errNotSaved and says where it went; saved is where it is, "" if
// nowhere.
func saveOrKeep(o *observation.Observation, dir string, overwrite bool) (saved string, _ error) {
	save := observation.Save
	if overwrite {
		save = observation.Replace
	}
	err := save(o, dir)
	if err == nil {
		return dir, nil
	}
	tmp, terr := os.MkdirTemp("", "perfhound-observation-")
	if terr == nil {
		if terr = observation.Save(o, tmp); terr == nil {
			return tmp, fmt.Errorf("%w: saving the observation to %s: %v; it is in %s instead", errNotSaved, dir, err, tmp)
		}
		os.Remove(tmp)
	}
	return "", fmt.Errorf("%w: saving the observation to %s: %v; and to a temporary directory: %v", errNotSaved, dir, err, terr)
}

// extension is a report file's name ending for a format.
func extension(format string) string {
	switch format {
	case "json":
		return ".json"
	case "markdown", "md":
		return ".md"
	case "html":
		return ".html"
	}
	return ".txt"
}

// printErrors prints err as the "perfhound: " lines of stderr, one per
// line of its message (errors.Join puts each error on its own).
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "perfhound: %s\n", line)
	}
}

// isNotSaved reports whether err says only that results were kept
// elsewhere: every error it joins wraps errNotSaved.
func isNotSaved(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !isNotSaved(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, errNotSaved)
}
