package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/common"
	"golang.org/x/sys/unix"
)

// maxFileBytes bounds what a sampler reads of one file. The largest file
// read here, /proc/stat on a host with thousands of interrupt lines, stays
// far below it; a fixture tree or a broken mount that serves more is an
// error, not an allocation.
const maxFileBytes = 16 << 20

// openFile opens a file to read, as readFile and heldFiles do, with the
// system call itself (see readFile).
func openFile(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// proc and sys join a path under the environment's pseudo-filesystems.
func (e Env) proc(elem ...string) string { return filepath.Join(e.ProcFS, filepath.Join(elem...)) }
func (e Env) sys(elem ...string) string  { return filepath.Join(e.SysFS, filepath.Join(elem...)) }

// gopsutil returns ctx carrying the environment's paths in the form
// gopsutil's *WithContext functions read them, so that they read the same
// tree as the samplers that parse files themselves.
func (e Env) gopsutil(ctx context.Context) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: e.ProcFS,
		common.HostSysEnvKey:  e.SysFS,
	})
}

// readFile reads a whole pseudo-file. Files in /proc report size 0, so it
// reads to EOF, at most maxFileBytes. Errors name the file (as
// *fs.PathError, so errors.Is sees fs.ErrNotExist and the errno).
//
// It makes the system calls itself: the agent reads two files of every
// process each window, and os.Open adds a poller registration attempt
// (a failing epoll_ctl), a finalizer and a File to each open, a fifth of
// the process scan's CPU (BenchmarkProcessScan).
func readFile(path string) ([]byte, error) {
	fd, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 1024)
	for {
		if len(b) > maxFileBytes {
			return nil, fmt.Errorf("reading %s: more than %d bytes", path, maxFileBytes)
		}
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// fileError makes err name path unless it already does (errors from the
// os package carry the path).
func fileError(path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) || strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// lineError is a line of a file that did not parse.
func lineError(path string, line int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", path, line, fmt.Sprintf(format, args...))
}

// lines calls fn with each line of b (without its newline) and its
// 1-based number, stopping at the first error.
func lines(b []byte, fn func(n int, line string) error) error {
	n := 0
	for len(b) > 0 {
		n++
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if err := fn(n, string(line)); err != nil {
			return err
		}
	}
	return nil
}

// parseFlatKeyed parses files of "name value" lines (/proc/vmstat) and
// returns the values of the wanted names that are present. Every line
// must have two fields; the values of wanted names must be unsigned
// integers.
func parseFlatKeyed(path string, b []byte, want map[string]bool) (map[string]uint64, error) {
	out := make(map[string]uint64, len(want))
	err := lines(b, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) != 2 {
			return lineError(path, n, "want \"name value\", got %q", line)
		}
		if !want[f[0]] {
			return nil
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return lineError(path, n, "%s: %v", f[0], err)
		}
		out[f[0]] = v
		return nil
	})
	return out, err
}

// parseSNMPTables parses the format of /proc/net/snmp and
// /proc/net/netstat: pairs of lines, a header "Tcp: Name1 Name2 ..."
// followed by its values "Tcp: 1 2 ...". It returns the values by table
// and name. Values are signed (Tcp MaxConn is -1).
func parseSNMPTables(path string, b []byte) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	var (
		head     []string
		headName string
		headLine int
	)
	err := lines(b, func(n int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return lineError(path, n, "no \"Table:\" prefix in %q", line)
		}
		fields := strings.Fields(rest)
		if head == nil {
			head, headName, headLine = fields, name, n
			return nil
		}
		if name != headName {
			return lineError(path, n, "values for %q follow the header of %q (line %d)", name, headName, headLine)
		}
		if len(fields) != len(head) {
			return lineError(path, n, "%s: %d values for %d names (line %d)", name, len(fields), len(head), headLine)
		}
		t := make(map[string]int64, len(head))
		for i, h := range head {
			v, err := strconv.ParseInt(fields[i], 10, 64)
			if err != nil {
				return lineError(path, n, "%s %s: %v", name, h, err)
			}
			t[h] = v
		}
		out[name] = t
		head = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if head != nil {
		return nil, lineError(path, headLine, "header of %q has no line of values", headName)
	}
	return out, nil
}

// finiteNonNeg reports whether v is a number a gauge can hold: not NaN,
// not infinite, not negative (strconv.ParseFloat accepts "NaN" and "Inf").
func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
