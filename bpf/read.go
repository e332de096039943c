//go:build linux && amd64

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("bpf: session closed")

// epochGrace is how long Read waits after moving the epoch on before
// draining the one that ended: programs that read the old epoch just
// before the switch finish within microseconds.
const epochGrace = 2 * time.Millisecond

// Read drains everything gathered since the previous Read (or Start) into
// a Window. Collection goes on while it reads.
func (s *Session) Read() (*Window, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	w := &Window{Start: s.last, End: time.Now()}
	s.last = w.End

	missing, err := s.readStacks(w)
	if err != nil {
		return nil, err
	}
	if w.RunQueue, err = s.readRunQueue(); err != nil {
		return nil, err
	}
	if w.BlockIO, err = s.readBlockIO(); err != nil {
		return nil, err
	}
	if w.TCP, err = s.readTCP(); err != nil {
		return nil, err
	}
	if w.Counters, err = s.readCounters(); err != nil {
		return nil, err
	}
	w.Counters["stacks.missing"] = missing
	w.Symbolization = s.symbolizationSince()
	s.forgetExited()
	return w, nil
}

// counterNames gives each object's counters index names, in the order of
// the enum in its C source.
var counterNames = map[string][]string{
	"oncpu":   {"samples", "idle", "map_full", "user_stack_lost", "kernel_stack_lost", "native_walks", "native_cut"},
	"offcpu":  {"switches", "recorded", "short", "start_full", "map_full", "user_stack_lost", "kernel_stack_lost", "unsampled", "native_walks", "native_cut"},
	"faults":  {"faults", "map_full", "user_stack_lost", "native_walks", "native_cut"},
	"runqlat": {"events", "start_full", "map_full"},
	"biolat":  {"completed", "errors", "start_full", "map_full", "no_issue"},
	"tcp":     {"events", "sock_full", "map_full"},
	"procs":   {"execs", "ring_full", "followed", "follow_full"},
}

// readCounters sums the per-CPU counters and returns how much each grew
// since the last Read.
func (s *Session) readCounters() (map[string]uint64, error) {
	out := map[string]uint64{}
	for obj, coll := range s.objs {
		m := coll.Maps["counters"]
		for i, name := range counterNames[obj] {
			var perCPU []uint64
			if err := m.Lookup(uint32(i), &perCPU); err != nil {
				return nil, fmt.Errorf("bpf: reading %s counters: %w", obj, err)
			}
			var total uint64
			for _, v := range perCPU {
				total += v
			}
			key := obj + "." + name
			out[key] = total - s.base[key]
			s.base[key] = total
		}
	}
	return out, nil
}

// forgetExited drops the mapping snapshots of processes that exited
// before this window ended: their samples have been symbolized now.
func (s *Session) forgetExited() {
	s.watchMu.Lock()
	gone := s.exited
	s.exited = nil
	for _, pid := range gone {
		delete(s.watched, pid)
	}
	s.watchMu.Unlock()
	for _, pid := range gone {
		s.sym.Forget(int(pid))
	}
}

// taskState names a task state word as ps does (see Window.OffCPU).
func taskState(state uint32) string {
	const (
		interruptible   = 0x1
		uninterruptible = 0x2
		stopped         = 0x4
		traced          = 0x8
		parked          = 0x40
		noload          = 0x400
	)
	switch {
	case state == 0:
		return "R"
	case state&uninterruptible != 0 && state&noload != 0:
		return "I"
	case state&interruptible != 0:
		return "S"
	case state&uninterruptible != 0:
		return "D"
	case state&(stopped|traced) != 0:
		return "T"
	case state&parked != 0:
		return "P"
	}
	return "X"
}

// requestOp names a block request operation (REQ_OP_* in blk_types.h).
func requestOp(op uint32) string {
	switch op {
	case 0:
		return "read"
	case 1:
		return "write"
	case 2:
		return "flush"
	case 3:
		return "discard"
	case 5:
		return "secure_erase"
	case 9:
		return "write_zeroes"
	}
	return fmt.Sprintf("op%d", op)
}

// blockDeviceName reads a device's kernel name from /sys/dev/block.
func blockDeviceName(dev string) string {
	b, err := os.ReadFile("/sys/dev/block/" + dev + "/uevent")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return name
		}
	}
	return ""
}

// cString converts a NUL-terminated kernel char array.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// symbolizationSince returns the symbolizer's counts since the last call.
func (s *Session) symbolizationSince() SymbolizationStats {
	now := s.sym.Stats()
	prev := s.symStats
	s.symStats = now
	return SymbolizationStats{
		Samples:             now.Samples - prev.Samples,
		UnknownPIDSamples:   now.UnknownPIDSamples - prev.UnknownPIDSamples,
		UserFrames:          now.UserFrames - prev.UserFrames,
		UnknownUserFrames:   now.UnknownUserFrames - prev.UnknownUserFrames,
		KernelFrames:        now.KernelFrames - prev.KernelFrames,
		UnknownKernelFrames: now.UnknownKernelFrames - prev.UnknownKernelFrames,
		Processes:           now.Processes,
		ObjectBytes:         now.ObjectBytes,
	}
}
