//go:build linux && amd64

package bpf

import (
	"container/list"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/bpf/ehframe"
	"github.com/perfhound/perfhound/bpf/symbolize"
)

// unwinder feeds c/unwind.h's walker: each object's compiled .eh_frame
// table in its own array (unwind_tables), and each process's executable
// mappings with the table that covers them (unwind_procs).
//
// Tables are kept by object, shared by every process that maps it: by
// build ID (a container's copy of libc is the host's), else by device
// and inode. Their bytes in the kernel are held under maxBytes: past it
// the least recently used tables are dropped, and a walk through an
// object whose table was dropped is cut (UNWIND_CUT_NO_TABLE) until a
// process that maps it is added again.
type unwinder struct {
	tables, procs *ebpf.Map
	maxBytes      int64
	bytes         int64
	objects       map[string]*unwindObject // by build ID or dev:inode
	lru           *list.List               // of *unwindObject, most recently used first
	next          uint32
}

// unwindObject is an object's table in the kernel, or that it has none.
type unwindObject struct {
	key   string
	id    uint32 // 0: no table (no .eh_frame, a Go binary; or it failed)
	len   uint32
	bytes int64
	elem  *list.Element
}

// maxTableEntries is what c/unwind.h's binary search reaches
// (UNWIND_SEARCH_STEPS halvings).
const maxTableEntries = 1 << 22

// unwindFPGaps marks a mapping's entry count: the code its table does not
// cover is walked by frame pointers (UNWIND_FP_GAPS in c/unwind.h).
const unwindFPGaps = 0x80000000

func newUnwinder(tables, procs *ebpf.Map, maxBytes int64) *unwinder {
	return &unwinder{tables: tables, procs: procs, maxBytes: maxBytes, objects: map[string]*unwindObject{}, lru: list.New(), next: 1}
}

// object returns the table of the object open as ef (key: its build ID or
// file), compiling and loading it when it is not in the kernel, and marks
// it used.
func (u *unwinder) object(key string, ef *elf.File) *unwindObject {
	if o := u.objects[key]; o != nil {
		if o.elem != nil {
			u.lru.MoveToFront(o.elem)
		}
		return o
	}
	o := &unwindObject{key: key}
	u.objects[key] = o
	t, err := ehframe.CompileELF(ef)
	if err != nil || len(t.Entries) == 0 {
		return o // remembered: every process of a Go binary would try again
	}
	id, err := u.loadTable(t)
	if err != nil {
		return o
	}
	o.id, o.len, o.bytes = id, uint32(len(t.Entries)), int64(t.Bytes())
	o.elem = u.lru.PushFront(o)
	u.bytes += o.bytes
	u.evict(o)
	return o
}

// evict drops the least recently used tables until the bytes fit, never
// keep, the one just loaded.
func (u *unwinder) evict(keep *unwindObject) {
	for u.bytes > u.maxBytes {
		e := u.lru.Back()
		o := e.Value.(*unwindObject)
		if o == keep {
			return
		}
		u.lru.Remove(e)
		u.tables.Delete(o.id) // the kernel frees the array with its last reference
		u.bytes -= o.bytes
		delete(u.objects, o.key)
	}
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
	return id, nil
}

// addProcess describes pid's executable file mappings to the walker,
// compiling and loading the tables of objects not seen before, when every
// one of them has a table. It returns how many mappings it gave the
// walker (0: the process is left to frame pointers), and how many were
// past the walker's UNWIND_MAX_MAPPINGS.
func (u *unwinder) addProcess(pid int) (mapped, left int, err error) {
	maps, err := symbolize.ReadExecMappings(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return 0, 0, err
	}
	var proc unwindwalkEhwProc
	uncovered := 0 // executable mappings without a table or frame pointers
	tabled := 0    // with a table
	for _, mm := range maps {
		if !strings.HasPrefix(mm.Path, "/") || mm.Deleted {
			// Anonymous executable memory is JIT code, which keeps frame
			// pointers where it keeps anything; a deleted file cannot be
			// read here. [vdso] and [vsyscall] are the kernel's: a sample
			// there costs one frame.
			if !strings.HasPrefix(mm.Path, "[v") {
				uncovered++
			}
			continue
		}
		if int(proc.N) == len(proc.M) {
			left++
			continue
		}
		ef, err := elf.Open(fmt.Sprintf("/proc/%d/root%s", pid, mm.Path))
		if err != nil {
			uncovered++
			continue
		}
		bias, ok := ehframe.LoadBias(ef, mm.Start, mm.Offset)
		// The same path in two containers is two files; the same build ID
		// is one object wherever it is.
		key := fmt.Sprintf("f:%d:%d:%d", mm.DevMajor, mm.DevMinor, mm.Inode)
		if id := symbolize.BuildID(ef); id != "" {
			key = "b:" + id
		}
		var o *unwindObject
		if ok {
			o = u.object(key, ef)
		}
		goCode := isGo(ef)
		ef.Close()
		m := &proc.M[proc.N]
		m.Start, m.End = mm.Start, mm.End
		if o != nil && o.id != 0 {
			m.Bias, m.Table, m.Len = bias, o.id, o.len
			tabled++
		}
		switch {
		case goCode:
			// A Go binary's code keeps frame pointers where its table
			// (a cgo binary's C parts) does not cover it.
			m.Len |= unwindFPGaps
		case m.Table == 0:
			uncovered++
			continue
		}
		proc.N++
	}
	// A process is walked by the walker only when all its code has tables
	// or frame pointers, and some has tables: a JIT (anonymous executable
	// memory) keeps the kernel's frame-pointer walk, which goes through
	// its frames where a table walk would stop at the first, and so does
	// a program of Go alone, whose walk that is.
	if uncovered > 0 || left > 0 || tabled == 0 {
		u.procs.Delete(uint32(pid))
		return 0, left, nil
	}
	if err := u.procs.Put(uint32(pid), &proc); err != nil {
		return 0, 0, fmt.Errorf("unwind_procs: %w", err)
	}
	return int(proc.N), left, nil
}

// isGo tells a Go binary by its function table (.gopclntab, kept by
// strip: the runtime needs it). Its Go code has no .eh_frame and keeps
// frame pointers; a cgo binary's .eh_frame covers its C parts alone.
func isGo(ef *elf.File) bool {
	return ef.Section(".gopclntab") != nil
}
