//go:build linux

package symbolize

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Code a JIT compiles has no file: the JVM (with a perf-map agent), Node.js
// (--perf-basic-prof), Python 3.12+ (-X perf), LuaJIT, .NET write its
// symbols to /tmp/perf-PID.map instead, one "START SIZE NAME" line (hex,
// no 0x) per compiled function, the convention perf(1) reads. Addresses in
// a process's anonymous executable mappings are looked up there.
//
// The file is read through /proc/PID/root (a container's /tmp) under the
// PID the process has in its own namespace, once per profile: it grows as
// the JIT compiles more, and the latest line for an address wins, as a
// JIT may reuse memory. maxPerfMapBytes bounds what is read of it.
const maxPerfMapBytes = 64 << 20

// perfMap is one process's JIT symbols, sorted by start.
type perfMap struct {
	syms []perfSym
}

type perfSym struct {
	start, end uint64
	name       string
}

// lookup returns the JIT symbol covering addr.
func (m *perfMap) lookup(addr uint64) (string, bool) {
	if m == nil {
		return "", false
	}
	i, found := slices.BinarySearchFunc(m.syms, addr, func(s perfSym, a uint64) int {
		switch {
		case s.end <= a:
			return -1
		case s.start > a:
			return 1
		}
		return 0
	})
	if !found {
		return "", false
	}
	return m.syms[i].name, true
}

// readPerfMap reads the perf map of pid, nil when it has none. startTicks
// is the process's start time (clock ticks after boot, from its stat).
func readPerfMap(procfs string, pid int, startTicks uint64) *perfMap {
	dir := filepath.Join(procfs, strconv.Itoa(pid))
	nspid := pid
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
						nspid = n
					}
				}
			}
		}
	}
	name := fmt.Sprintf("perf-%d.map", nspid)
	f, err := os.Open(filepath.Join(dir, "root", "tmp", name))
	if err != nil {
		if _, rootErr := os.Stat(filepath.Join(dir, "root")); !os.IsNotExist(rootErr) {
			return nil // alive, and no map of its own (or not ours to read)
		}
		// Gone already (a command that ended with the window), or a
		// zombie, whose /proc/PID/root is gone while its directory stays
		// (diagnose reads a command's last window before it reaps it):
		// its map stays in /tmp, this host's when it ran in this mount
		// namespace. Only a map written since the process started is its
		// own, not a reused PID's.
		if f, err = os.Open(filepath.Join("/tmp", fmt.Sprintf("perf-%d.map", pid))); err != nil {
			return nil
		}
		st, err := f.Stat()
		if err != nil || startTicks == 0 || st.ModTime().Before(bootTime(procfs).Add(time.Duration(startTicks)*time.Second/userHZ)) {
			f.Close()
			return nil
		}
	}
	defer f.Close()
	// The newest lines win, so a map over the limit is read from its end.
	var r io.Reader = f
	if st, err := f.Stat(); err == nil && st.Size() > maxPerfMapBytes {
		if _, err := f.Seek(st.Size()-maxPerfMapBytes, io.SeekStart); err != nil {
			return nil
		}
		br := bufio.NewReader(f)
		br.ReadString('\n') // the first line is cut
		r = br
	}
	m, _ := parsePerfMap(r)
	return m
}

// userHZ is the unit of /proc's clock ticks on Linux (USER_HZ).
const userHZ = 100

// bootTime is when the host booted, from /proc/stat's btime.
func bootTime(procfs string) time.Time {
	b, err := os.ReadFile(filepath.Join(procfs, "stat"))
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// parsePerfMap parses perf map lines, skipping malformed ones (a JIT may be
// writing the last line as it is read). Later lines replace earlier ones
// that overlap them.
func parsePerfMap(r io.Reader) (*perfMap, error) {
	var syms []perfSym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		a, rest, ok1 := bytes.Cut(line, []byte{' '})
		n, name, ok2 := bytes.Cut(rest, []byte{' '})
		if !ok1 || !ok2 || len(name) == 0 {
			continue
		}
		start, err1 := strconv.ParseUint(strings.TrimPrefix(string(a), "0x"), 16, 64)
		size, err2 := strconv.ParseUint(strings.TrimPrefix(string(n), "0x"), 16, 64)
		if err1 != nil || err2 != nil || size == 0 {
			continue
		}
		syms = append(syms, perfSym{start: start, end: start + size, name: string(name)})
	}
	if len(syms) == 0 {
		return nil, sc.Err()
	}
	// Keep the latest of overlapping symbols: sort stably by start, then
	// drop any symbol that a later line overlaps.
	order := make([]int, len(syms))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case syms[i].start < syms[j].start:
			return -1
		case syms[i].start > syms[j].start:
			return 1
		}
		return i - j
	})
	out := make([]perfSym, 0, len(syms))
	outIdx := make([]int, 0, len(syms))
	for _, i := range order {
		s := syms[i]
		for len(out) > 0 && out[len(out)-1].end > s.start {
			if outIdx[len(outIdx)-1] > i {
				s = perfSym{} // an earlier line, overlapped by a later one: dropped
				break
			}
			out, outIdx = out[:len(out)-1], outIdx[:len(outIdx)-1]
		}
		if s.end > s.start {
			out, outIdx = append(out, s), append(outIdx, i)
		}
	}
	return &perfMap{syms: out}, sc.Err()
}
