// Package regfile opens input files without ever blocking on them. A
// named pipe with no writer blocks open(2) forever, a device or a socket
// never ends, and some /proc and /sys files block in read(2): none of them
// is a perfhound input, so they are refused before anything is read.
package regfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// ErrNotRegular is a path that is not a regular file (a FIFO, a socket, a
// device, a kernel pseudo-file of /proc or /sys).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is a file larger than the reader's cap: profdecode's, so
// that one errors.Is tells a file too large on disk and one that inflates
// or parses too large.
var ErrTooLarge = profdecode.ErrTooLarge

// ID is what makes two paths the same file or directory, whatever
// symlinks or hard links lead to it: its device and inode.
type ID struct{ Dev, Ino uint64 }

// IDOf is the ID of the file fi describes; false when fi does not say.
func IDOf(fi fs.FileInfo) (ID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ID{}, false
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, true
}

// Check says why a file of this mode is not a regular file, or nil. It
// follows no symlink: give it what os.Stat returned.
func Check(mode fs.FileMode) error {
	if mode.IsRegular() {
		return nil
	}
	what := "special file"
	switch {
	case mode.IsDir():
		what = "directory"
	case mode&fs.ModeNamedPipe != 0:
		what = "named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		what = "socket"
	case mode&fs.ModeCharDevice != 0:
		what = "character device"
	case mode&fs.ModeDevice != 0:
		what = "block device"
	case mode&fs.ModeSymlink != 0:
		what = "symlink"
	}
	return fmt.Errorf("%s, %w", what, ErrNotRegular)
}

// Open opens path for reading if it is a regular file on a real
// filesystem. It stats first, so that a device is not even opened (opening
// one can have effects), then opens with O_NONBLOCK, so that a FIFO put in
// the path's place meanwhile cannot block, and checks the opened file
// itself. Errors are the *fs.PathError of os, or wrap ErrNotRegular.
func Open(path string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := Check(st.Mode()); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err == nil {
		err = Check(st.Mode())
	}
	if err == nil {
		err = checkFS(f)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// checkFS refuses the kernel's pseudo-filesystems: their files call
// themselves regular, report a size of 0, and some block in read(2)
// (/proc/kmsg, tracing's trace_pipe) or never end.
func checkFS(f *os.File) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &sfs); err != nil {
		return nil // not knowing the filesystem is no reason to refuse
	}
	switch sfs.Type {
	case unix.PROC_SUPER_MAGIC:
		return fmt.Errorf("file of /proc, %w", ErrNotRegular)
	case unix.SYSFS_MAGIC, unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC:
		return fmt.Errorf("file of /sys, %w", ErrNotRegular)
	}
	return nil
}

// Read reads the whole of the regular file path, refusing one larger than
// limit bytes (on its size before reading, and on what was read, as the
// file may grow meanwhile) with ErrTooLarge. It charges b for the buffer
// before allocating it (see profdecode.ReadAll) and returns what stays
// charged: refund it when the data is dropped. b may be nil.
func Read(path string, limit int64, b *profdecode.Budget) ([]byte, int64, error) {
	f, st, err := Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, st.Size(), limit)
	}
	data, charged, err := profdecode.ReadAll(f, st.Size(), limit, b)
	if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, profdecode.ErrOverBudget) {
		err = fmt.Errorf("reading: %w", err)
	}
	return data, charged, err
}
