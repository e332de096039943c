//go:build linux && amd64

package bpf

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/bpf/ehframe"
)

// unwinder feeds c/unwind.h's walker: each object's compiled .eh_frame
// table in its own array (unwind_tables), and each process's executable
// mappings with the table that covers them (unwind_procs).
//
// This is the first step: tables are compiled per file path when a
// process is added and kept for the unwinder's life. Caching by build ID
// across processes, loading on demand and eviction under a byte bound
// come with the collectors' use of it.
type unwinder struct {
	tables, procs *ebpf.Map
	ids           map[string]uint32 // file (dev:inode) -> table id; 0: it has none
	lens          map[uint32]uint32
	next          uint32
}

// maxTableEntries is what c/unwind.h's binary search reaches
// (UNWIND_SEARCH_STEPS halvings).
const maxTableEntries = 1 << 22

func newUnwinder(tables, procs *ebpf.Map) *unwinder {
	return &unwinder{tables: tables, procs: procs, ids: map[string]uint32{}, lens: map[uint32]uint32{}, next: 1}
}

// loadTable puts a compiled table into its own array and the array into
// unwind_tables under a new id.
func (u *unwinder) loadTable(t *ehframe.Table) (uint32, error) {
	n := len(t.Entries)
	if n == 0 {
		return 0, errors.New("empty table")
	}
	if n > maxTableEntries {
		return 0, fmt.Errorf("table of %d entries: the walker's search reaches %d", n, maxTableEntries)
	}
	inner, err := ebpf.NewMap(&ebpf.MapSpec{
		Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: uint32(n), Flags: unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		return 0, fmt.Errorf("table of %d entries: %w", n, err)
	}
	defer inner.Close() // unwind_tables holds its own reference
	keys := make([]uint32, n)
	vals := make([]uint64, n)
	var b [ehframe.EntrySize]byte
	for i := range t.Entries {
		t.Entries[i].Pack(b[:])
		keys[i], vals[i] = uint32(i), binary.LittleEndian.Uint64(b[:])
	}
	if _, err := inner.BatchUpdate(keys, vals, nil); err != nil {
		return 0, fmt.Errorf("filling a table of %d entries: %w", n, err)
	}
	id := u.next
	if err := u.tables.Put(id, inner); err != nil {
		return 0, fmt.Errorf("unwind_tables: %w", err)
	}
	u.next++
	u.lens[id] = uint32(n)
	return id, nil
}

// addProcess describes pid's executable file mappings to the walker,
// compiling and loading the tables of objects not seen before. It
// returns how many mappings have a table, and how many more were left
// out past the walker's UNWIND_MAX_MAPPINGS.
func (u *unwinder) addProcess(pid int) (mapped, left int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return 0, 0, err
	}
	var proc unwindwalkEhwProc
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[1], "x") || !strings.HasPrefix(f[5], "/") {
			continue
		}
		if int(proc.N) == len(proc.M) {
			left++
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		off, _ := strconv.ParseUint(f[2], 16, 64)
		// The same path in two containers is two files: known by device
		// and inode, as the process sees them.
		file := f[3] + ":" + f[4]
		ef, err := elf.Open(fmt.Sprintf("/proc/%d/root%s", pid, f[5]))
		if err != nil {
			continue
		}
		bias, ok := ehframe.LoadBias(ef, start, off)
		id, seen := u.ids[file]
		if ok && !seen {
			// A failure is kept too (id 0): a Go binary has no .eh_frame,
			// and every process of it would try again.
			if t, err := ehframe.CompileELF(ef); err == nil && len(t.Entries) > 0 {
				id, _ = u.loadTable(t)
			}
			u.ids[file] = id
		}
		ef.Close()
		if !ok || id == 0 {
			continue
		}
		m := &proc.M[proc.N]
		m.Start, m.End, m.Bias, m.Table, m.Len = start, end, bias, id, u.lens[id]
		proc.N++
	}
	if err := u.procs.Put(uint32(pid), &proc); err != nil {
		return 0, 0, fmt.Errorf("unwind_procs: %w", err)
	}
	return int(proc.N), left, nil
}
