//go:build linux

package symbolize

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procMapping is one executable line of /proc/PID/maps, with the identity of
// the object behind it. It is immutable once its process snapshot is stored.
type procMapping struct {
	start, end, offset uint64
	devMajor, devMinor uint32
	inode              uint64
	path               string // as the process sees it, without " (deleted)"
	deleted            bool

	key     string // object cache key; "" when there is no object (anonymous, [heap], unreadable)
	buildID string
	// size and mtime are the file's when it was identified (ns since the
	// epoch): a later snapshot reuses the identification only while they
	// hold (a file rewritten in place keeps its inode).
	size, mtime int64
	hasSyms     bool // the object has a symbol table
	hasGo       bool // the object has a Go line table
}

// readMaps parses the executable mappings of a /proc/PID/maps file.
func readMaps(path string) ([]procMapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMaps(f)
}

func parseMaps(r io.Reader) ([]procMapping, error) {
	var out []procMapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		m, exec, err := parseMapsLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if exec {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseMapsLine parses "start-end perms offset major:minor inode   path".
func parseMapsLine(s string) (m procMapping, exec bool, err error) {
	var fields [5]string
	rest := s
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		fields[i], rest = rest[:j], rest[j:]
	}
	if fields[4] == "" {
		return m, false, fmt.Errorf("malformed maps line %q", s)
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, false, fmt.Errorf("malformed address range %q", fields[0])
	}
	if m.start, err = strconv.ParseUint(lo, 16, 64); err == nil {
		m.end, err = strconv.ParseUint(hi, 16, 64)
	}
	if err == nil {
		m.offset, err = strconv.ParseUint(fields[2], 16, 64)
	}
	if err == nil {
		maj, min, _ := strings.Cut(fields[3], ":")
		var a, b uint64
		if a, err = strconv.ParseUint(maj, 16, 32); err == nil {
			b, err = strconv.ParseUint(min, 16, 32)
		}
		m.devMajor, m.devMinor = uint32(a), uint32(b)
	}
	if err == nil {
		m.inode, err = strconv.ParseUint(fields[4], 10, 64)
	}
	if err != nil {
		return m, false, fmt.Errorf("malformed maps line %q: %w", s, err)
	}
	m.path = strings.TrimLeft(rest, " ")
	if p, ok := strings.CutSuffix(m.path, " (deleted)"); ok && m.inode != 0 {
		m.path, m.deleted = p, true
	}
	return m, strings.Contains(fields[1], "x"), nil
}

// readStat returns the state (field 3) and start time (field 22, in clock
// ticks since boot) of /proc/PID/stat. The start time tells a reused PID
// from the process that had it.
func readStat(procfs string, pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile(filepath.Join(procfs, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed %s/%d/stat", procfs, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed %s/%d/stat: %d fields", procfs, pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed %s/%d/stat: %w", procfs, pid, err)
	}
	return f[0][0], start, nil
}

// procInode is the inode number of /proc/PID, 0 when it cannot be had.
// procfs makes a new inode, with a new number, for each process it
// looks up: a PID reused by another process gets another (the old
// dentry dies with its task), so an unchanged number is the same process,
// told by one stat(2) where readStat reads and formats the task's whole
// stat line.
func procInode(procfs string, pid int) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(procfs, strconv.Itoa(pid)), &st); err != nil {
		return 0
	}
	return st.Ino
}

// kernelThread tells whether pid is a kernel thread (PF_KTHREAD in the
// flags of its stat), which maps nothing.
func kernelThread(procfs string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(procfs, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&0x00200000 != 0
}

// devOf splits a Linux dev_t the way glibc's major() and minor() do.
func devOf(dev uint64) (major, minor uint32) {
	major = uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff)
	minor = uint32(dev&0xff) | uint32((dev>>12)&^0xff)
	return major, minor
}

// ExecMapping is an executable mapping of a process, as the symbolizer
// reads /proc/PID/maps: for other readers of a process's code (the
// .eh_frame unwinder), so that the file is parsed one way.
type ExecMapping struct {
	Start, End, Offset uint64
	DevMajor, DevMinor uint32
	Inode              uint64
	// Path is the file as the process sees it, without " (deleted)"; ""
	// for anonymous memory (JIT code), "[vdso]" and the like for the
	// kernel's.
	Path    string
	Deleted bool
}

// ReadExecMappings parses the executable mappings of a /proc/PID/maps
// file.
func ReadExecMappings(path string) ([]ExecMapping, error) {
	ms, err := readMaps(path)
	out := make([]ExecMapping, len(ms))
	for i, m := range ms {
		out[i] = ExecMapping{Start: m.start, End: m.end, Offset: m.offset, DevMajor: m.devMajor, DevMinor: m.devMinor,
			Inode: m.inode, Path: m.path, Deleted: m.deleted}
	}
	return out, err
}
