package observe

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The leak check of TestMain, after cilium/ebpf's testmain: once every
// test has passed, nothing the watchers opened may be left, neither a
// goroutine nor a file descriptor (BPF programs, maps and links, perf
// events, ring buffers, /proc files and netlink sockets are all file
// descriptors).

// leakDeadline is how long the check waits for what is closing to be
// gone (an HTTP connection's goroutines after the server closed) on a
// busy machine before calling it a leak.
const leakDeadline = 30 * time.Second

// openFDs lists this process's file descriptors and what each refers to
// (with a BPF object's ID).
func openFDs() map[string]string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	fds := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed after the listing
		}
		fds[e.Name()] = target + bpfID(e.Name())
	}
	return fds
}

// bpfID is the kernel's ID of the BPF program, map or link behind a
// descriptor (" prog_id 42"), "" for anything else: a descriptor closed
// and another opened under the same number differ by it.
func bpfID(fd string) string {
	b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd))
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "prog_id" || k == "map_id" || k == "link_id") {
			return " " + k + " " + strings.TrimSpace(v)
		}
	}
	return ""
}

// otherGoroutines is the stack of every goroutine but the caller's.
func otherGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(bytes.TrimSpace(buf)), "\n\n")
	return stacks[1:] // the first is the caller's own
}

// newFDs lists the descriptors open now that were not in before.
func newFDs(before map[string]string) []string {
	var out []string
	for fd, target := range openFDs() {
		if before[fd] != target {
			out = append(out, fd+" -> "+target)
		}
	}
	slices.Sort(out)
	return out
}

// checkLeaks waits until no goroutine but the caller is left and no
// descriptor beyond before is open, and says what is left at the
// deadline.
func checkLeaks(before map[string]string) error {
	deadline := time.Now().Add(leakDeadline)
	for {
		gs, fds := otherGoroutines(), newFDs(before)
		if len(gs) == 0 && len(fds) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked after every test ended: %d goroutines, %d file descriptors:\n%s\n\n%s",
				len(gs), len(fds), strings.Join(fds, "\n"), strings.Join(gs, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warmUp opens what the Go runtime opens once and keeps for the
// process's life (the network poller's descriptors), so that they are
// not taken for leaks.
func warmUp() {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
}
