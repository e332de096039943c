//go:build linux && amd64

package bpf

import (
	"container/list"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
	// files remembers what a mapped file's ELF headers say, by the
	// mapping's device and inode: a process is described again at each of
	// the symbolizer's looks after its exec, and every process of a
	// program maps the same files, so each is opened once, not at each.
	files map[fileID]fileFacts
	opens int // files opened for their headers, for the tests
}

// fileID is a mapped file's identity, as /proc/PID/maps gives it; the
// vDSO's is its size, under a device number no file has (vdsoMajor).
type fileID struct {
	major, minor uint32
	inode        uint64
}

// fileFacts is what fileTable needs of a file's headers: the key of its
// table, whether it is a Go binary, and its executable segments, for the
// load bias.
type fileFacts struct {
	key   string
	goBin bool
	loads []elf.ProgHeader
}

// vdsoMajor marks the vDSO's fileID: major numbers are 12 bits.
const vdsoMajor = 1 << 31

// maxFileFacts bounds unwinder.files.
const maxFileFacts = 4096

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
	return &unwinder{tables: tables, procs: procs, maxBytes: maxBytes, objects: map[string]*unwindObject{}, lru: list.New(), next: 1,
		files: map[fileID]fileFacts{}}
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

// addProcess describes pid's executable mappings to the walker,
// compiling and loading the tables of objects not seen before, when some
// of them have tables (the others are walked by frame pointers). It
// returns how many mappings it gave the walker (0: the process is left to
// the kernel's frame-pointer walk), and how many were past the walker's
// UNWIND_MAX_MAPPINGS (then it gives none).
func (u *unwinder) addProcess(pid int) (mapped, left int, err error) {
	mapped, left, _, err = u.addProcessAt(pid, 0)
	return mapped, left, err
}

// addProcessAt is addProcess for a process whose walk was cut at pc, in
// code it was not described with (unwind_misses; pc 0 for none), and
// says whether pc is in a mapping it is now described with. The
// objects not met before are compiled one at a time, the one holding pc
// first, and the process is described again after each with the tables
// at hand: its threads are walked meanwhile, and a program that maps
// thirty libraries took 100 ms to have them all compiled on an idle
// machine (sysbench), several times that beside its own busy threads.
func (u *unwinder) addProcessAt(pid int, pc uint64) (mapped, left int, found bool, err error) {
	maps, err := symbolize.ReadExecMappings(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return 0, 0, false, err
	}
	order := maps
	if i := slices.IndexFunc(maps, func(mm symbolize.ExecMapping) bool { return pc >= mm.Start && pc < mm.End }); i > 0 {
		order = slices.Concat(maps[i:i+1], maps[:i], maps[i+1:])
	}
	for _, mm := range order {
		if mm.Path == "[vsyscall]" || u.met(mm) {
			continue
		}
		if mm.Path == symbolize.VDSOMapping {
			u.vdsoTable(pid, mm)
		} else {
			u.fileTable(pid, mm)
		}
		if !u.met(mm) {
			continue // unreadable: the final description walks it by frame pointers
		}
		if _, _, err := u.describe(pid, maps, false); err != nil {
			return 0, 0, false, err
		}
	}
	if mapped, left, err = u.describe(pid, maps, true); err != nil || mapped == 0 {
		return mapped, left, false, err
	}
	found = slices.ContainsFunc(maps, func(mm symbolize.ExecMapping) bool {
		return pc >= mm.Start && pc < mm.End && mm.Path != "[vsyscall]" && u.met(mm)
	})
	return mapped, left, found, nil
}

// describe puts pid's description: its mappings maps with the tables of
// their objects, which must have been met (compiled, or found to have
// none). A mapping whose object was not met is left out of a description
// that is not final (a walk there is cut, not walked by frame pointers a
// library without them does not keep), and one that has no tables yet
// is not put; in the final one it is walked by frame pointers (an object
// that could not be read).
func (u *unwinder) describe(pid int, maps []symbolize.ExecMapping, final bool) (mapped, left int, err error) {
	var proc unwindwalkEhwProc
	tabled := 0 // mappings with a table
	for _, mm := range maps {
		if mm.Path == "[vsyscall]" {
			continue // the legacy page: nothing calls it
		}
		if int(proc.N) == len(proc.M) {
			left++
			continue
		}
		if !final && !u.met(mm) {
			continue
		}
		m := &proc.M[proc.N]
		m.Start, m.End = mm.Start, mm.End
		if mm.Path == symbolize.VDSOMapping {
			// The vDSO has its .eh_frame: a sample in clock_gettime
			// walks on to its caller. Without a table it costs one frame.
			if bias, id, n, ok := u.vdsoTable(pid, mm); ok {
				m.Bias, m.Table, m.Len = bias, id, n
				proc.N++
			}
			continue
		}
		proc.N++
		if bias, id, n, ok := u.fileTable(pid, mm); ok {
			m.Bias, m.Table, m.Len = bias, id, n
			tabled++
			continue
		}
		// Code without a table is walked by frame pointers, as far as
		// they go, between the frames of the objects with tables: Go's
		// (its .eh_frame, if any, covers its cgo parts alone), JIT code
		// in anonymous memory (a JVM run with -XX:+PreserveFramePointer,
		// V8), a deleted or unreadable file.
		m.Len |= unwindFPGaps
	}
	// A process is walked by the walker when some of its code has tables;
	// a program of Go alone keeps the kernel's frame-pointer walk, which
	// is the same walk, cheaper.
	if !final && (left > 0 || tabled == 0) {
		return 0, left, nil // the description put before stands
	}
	if left > 0 || tabled == 0 {
		u.procs.Delete(uint32(pid))
		return 0, left, nil
	}
	if err := u.procs.Put(uint32(pid), &proc); err != nil {
		return 0, 0, fmt.Errorf("unwind_procs: %w", err)
	}
	return int(proc.N), left, nil
}

// fileTable is the table of the object mapped at mm (compiled and loaded
// when not seen before): its load bias, table id and entry count, with
// unwindFPGaps for a Go binary, whose code keeps frame pointers where its
// table does not cover it. ok is false for a file without a table or
// that cannot be read.
func (u *unwinder) fileTable(pid int, mm symbolize.ExecMapping) (bias uint64, id, n uint32, ok bool) {
	if !strings.HasPrefix(mm.Path, "/") || mm.Deleted {
		return 0, 0, 0, false
	}
	fid := fileID{mm.DevMajor, mm.DevMinor, mm.Inode}
	facts, o, ok := u.cached(fid)
	if !ok {
		// Not seen, or its table evicted since: open it.
		ef, err := elf.Open(fmt.Sprintf("/proc/%d/root%s", pid, mm.Path))
		if err != nil {
			return 0, 0, 0, false
		}
		defer ef.Close()
		// The same path in two containers is two files; the same build
		// ID is one object wherever it is.
		facts = fileFacts{key: fmt.Sprintf("f:%d:%d:%d", mm.DevMajor, mm.DevMinor, mm.Inode), goBin: isGo(ef)}
		if b := symbolize.BuildID(ef); b != "" {
			facts.key = "b:" + b
		}
		facts, o = u.remember(fid, facts, ef)
	}
	bias, ok = ehframe.LoadBiasOf(facts.loads, mm.Start, mm.Offset)
	if !ok || o.id == 0 {
		return 0, 0, 0, false
	}
	n = o.len
	if facts.goBin {
		n |= unwindFPGaps
	}
	return bias, o.id, n, true
}

// met tells a mapping whose object's table is held, or that has none to
// compile (anonymous or deleted code, walked by frame pointers).
func (u *unwinder) met(mm symbolize.ExecMapping) bool {
	fid := fileID{mm.DevMajor, mm.DevMinor, mm.Inode}
	switch {
	case mm.Path == symbolize.VDSOMapping:
		fid = fileID{major: vdsoMajor, inode: mm.End - mm.Start}
	case !strings.HasPrefix(mm.Path, "/") || mm.Deleted:
		return true
	}
	facts, known := u.files[fid]
	return known && u.objects[facts.key] != nil
}

// cached is what the headers of the file fid said, and its table, when
// it was met before and its table is still held (marked used).
func (u *unwinder) cached(fid fileID) (fileFacts, *unwindObject, bool) {
	facts, known := u.files[fid]
	o := u.objects[facts.key]
	if !known || o == nil {
		return fileFacts{}, nil, false
	}
	if o.elem != nil {
		u.lru.MoveToFront(o.elem)
	}
	return facts, o, true
}

// remember keeps what the headers of the file fid, open as ef, say (facts
// and its executable segments), and returns them with its table,
// compiled and loaded when not seen before.
func (u *unwinder) remember(fid fileID, facts fileFacts, ef *elf.File) (fileFacts, *unwindObject) {
	u.opens++
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			facts.loads = append(facts.loads, p.ProgHeader)
		}
	}
	if len(u.files) >= maxFileFacts {
		clear(u.files)
	}
	u.files[fid] = facts
	return facts, u.object(facts.key, ef)
}

// vdsoTable is the table of pid's vDSO (mm), read from its memory:
// the same image, and so the same table, in every 64-bit process of a
// kernel.
func (u *unwinder) vdsoTable(pid int, mm symbolize.ExecMapping) (bias uint64, id, n uint32, ok bool) {
	// Every 64-bit process of a kernel maps the same image: read it once
	// (from the first process met), by its size, unless its table was
	// evicted since.
	fid := fileID{major: vdsoMajor, inode: mm.End - mm.Start}
	facts, o, ok := u.cached(fid)
	if !ok {
		ef, key, err := symbolize.VDSOImage("/proc", pid, mm.Start, mm.End)
		if err != nil {
			return 0, 0, 0, false
		}
		facts, o = u.remember(fid, fileFacts{key: key}, ef)
	}
	if bias, ok = ehframe.LoadBiasOf(facts.loads, mm.Start, 0); !ok {
		return 0, 0, 0, false
	}
	return bias, o.id, o.len, o.id != 0
}

// isGo tells a Go binary by its function table (.gopclntab, kept by
// strip: the runtime needs it). Its Go code has no .eh_frame and keeps
// frame pointers; a cgo binary's .eh_frame covers its C parts alone.
func isGo(ef *elf.File) bool {
	return ef.Section(".gopclntab") != nil
}
