//go:build linux && amd64

package bpf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/bpf/symbolize"
)

// How stack-keyed counts are read (see c/stacks.h): stacks and counts live
// in three maps indexed by the epoch modulo 3, and the epoch moves on at
// every Read. At the end of epoch E, Read
//
//  1. copies ("parks") the stacks of epoch E-2 that off-CPU waits still
//     refer to: waits still pending, and waits that ended during E;
//  2. clears the stack map of epoch E-2, which epoch E+1 will use;
//  3. moves the epoch to E+1 and waits for programs in flight;
//  4. drains the counts of epoch E, resolving stack ids of epochs E and
//     E-1 from their maps and older ones from the parked copies;
//  5. keeps only the parked stacks that pending waits still refer to.
//
// On-CPU samples and page faults always refer to their own epoch; only an
// off-CPU wait, whose stack is taken when it begins, can refer to an older
// one, so a thread asleep for hours still has its stack when it wakes.
//
// A stack read from the map of an epoch that has ended is taken out of it
// (BPF_MAP_LOOKUP_AND_DELETE_ELEM, which stack trace maps take on recent
// kernels: 6.18 here) and kept in memory while its epoch may still be referred to (the
// session's taken stacks, two epochs). Clearing a map in step 2 then
// walks only the stacks nobody counted: one system call per stack instead
// of three (lookup, next key, delete), the stack maps' share of the
// agent's calls. Where the kernel refuses, stacks are looked up and the
// whole map walked and cleared, as before.

// maxParked bounds the parked stacks; past it a long wait's stack is lost
// and counted in stacks.missing.
const maxParked = 16384

// stackRef names one stack: the epoch it was taken in and its id.
type stackRef struct {
	epoch uint32
	id    int32
}

// stackCollectors are the objects whose counts are keyed by stack.
var stackCollectors = []struct {
	collector Collector
	counts    string
}{
	{OnCPU, "oncpu_counts"},
	{OffCPU, "offcpu_counts"},
	{PageFaults, "fault_counts"},
}

// stackEntry is one drained bucket of stack-keyed counts.
type stackEntry struct {
	key    oncpuStackKey // the same layout in every stack-keyed object
	values []int64
}

// overflowID marks a stack id of the overflow map (OVERFLOW_ID in
// c/stacks.h), nativeID one walked by .eh_frame tables, in the native
// maps (NATIVE_ID in c/unwind.h).
const (
	overflowID = 0x40000000
	nativeID   = 0x20000000
)

// The stack maps' names by epoch modulo generations, named once rather
// than at each of a read's hundreds of lookups.
var (
	stackMapNames    = [generations]string{"stacks0", "stacks1", "stacks2"}
	overflowMapNames = [generations]string{"overflow0", "overflow1", "overflow2"}
	nativeMapNames   = [generations]string{"natstacks0", "natstacks1", "natstacks2"}
)

func stackMap(maps map[string]*ebpf.Map, epoch uint32) *ebpf.Map {
	return maps[stackMapNames[epoch%generations]]
}

// nativeMap is nil in a session without the .eh_frame walker.
func nativeMap(maps map[string]*ebpf.Map, epoch uint32) *ebpf.Map {
	return maps[nativeMapNames[epoch%generations]]
}

func overflowMap(maps map[string]*ebpf.Map, epoch uint32) *ebpf.Map {
	return maps[overflowMapNames[epoch%generations]]
}

// takeStack reads one stack of an epoch that has ended, from the main map
// or, for an id marked overflowID, the overflow map, and deletes it there
// unless the kernel cannot (then s.keepStacks is set and the map's
// clearing deletes it). What it found, and what it did not (nil: the
// epoch has ended, so a missing stack stays missing), is kept in s.taken
// until the epoch's map is cleared: each id costs one system call however
// many counts refer to it.
func (s *Session) takeStack(epoch uint32, id int32) ([]uint64, bool) {
	ref := stackRef{epoch, id}
	if pcs, ok := s.taken[ref]; ok {
		return pcs, pcs != nil
	}
	if id&nativeID != 0 {
		return s.takeNativeStack(ref)
	}
	m := stackMap(s.shared, epoch)
	if id&overflowID != 0 {
		m, id = overflowMap(s.shared, epoch), id&^overflowID
	}
	raw := &s.stackBuf
	var err error
	if !s.keepStacks {
		err = m.LookupAndDelete(uint32(id), raw)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			s.keepStacks = true // not on this kernel: look up, and clear by walking
		}
	}
	if s.keepStacks {
		err = m.Lookup(uint32(id), raw)
	}
	if err != nil {
		s.taken[ref] = nil
		return nil, false
	}
	pcs := trimStack(raw[:])
	s.taken[ref] = pcs
	return pcs, true
}

// takeNativeStack reads a stack the .eh_frame walker stored, as takeStack
// reads the kernel's: taken out of its epoch's map and kept in s.taken.
func (s *Session) takeNativeStack(ref stackRef) ([]uint64, bool) {
	m := nativeMap(s.shared, ref.epoch)
	if m == nil {
		s.taken[ref] = nil
		return nil, false
	}
	var st oncpuEhwState
	if err := m.LookupAndDelete(uint32(ref.id), &st); err != nil || st.Len == 0 {
		s.taken[ref] = nil
		return nil, false
	}
	pcs := append([]uint64(nil), st.Pcs[:min(int(st.Len), len(st.Pcs))]...)
	s.taken[ref] = pcs
	return pcs, true
}

func countsMap(coll *ebpf.Collection, name string, epoch uint32) *ebpf.Map {
	return coll.Maps[fmt.Sprintf("%s%d", name, epoch%generations)]
}

// readStacks ends the current epoch and turns its counts into profiles.
// It returns how many sample stacks could not be found.
func (s *Session) readStacks(w *Window) (missing uint64, err error) {
	if s.shared["epoch"] == nil {
		return 0, nil
	}
	e := s.epoch
	var pending map[stackRef]bool
	if e >= 2 {
		if pending, err = s.parkStacks(e - 2); err != nil {
			return 0, fmt.Errorf("bpf: keeping the stacks of long waits: %w", err)
		}
		for _, m := range []*ebpf.Map{stackMap(s.shared, e-2), overflowMap(s.shared, e-2), nativeMap(s.shared, e-2)} {
			if m == nil {
				continue
			}
			if err := clearMap(m); err != nil {
				return 0, fmt.Errorf("bpf: clearing stack map: %w", err)
			}
		}
		for ref := range s.taken {
			if ref.epoch <= e-2 {
				delete(s.taken, ref) // parked if a wait needs it
			}
		}
	}
	// The ending epoch was sampled at s.frequency; the next one starts at
	// the rate SetFrequency asked for. A failure to switch keeps the old
	// rate and is the window's to report, not the read's.
	hz := s.frequency
	if err := s.switchFrequency(); err != nil {
		w.FrequencyError = err.Error()
	}
	if err := s.shared["epoch"].Put(uint32(0), e+1); err != nil {
		return 0, fmt.Errorf("bpf: moving the stack epoch on: %w", err)
	}
	s.epoch = e + 1
	time.Sleep(epochGrace)

	stacks := stackReader{s: s, current: e}
	period := int64(time.Second) / int64(max(hz, 1))
	w.Frequency = hz
	for _, sc := range stackCollectors {
		coll := s.objs[string(sc.collector)]
		if coll == nil {
			continue
		}
		entries, err := drainStackCounts(countsMap(coll, sc.counts, e), sc.collector, period)
		if err != nil {
			return 0, fmt.Errorf("bpf: reading %s: %w", sc.collector, err)
		}
		for _, en := range entries {
			s.watch(en.key.Tgid)
		}
		b := s.newBuilder(sc.collector, period)
		labels := threadLabels{}
		for _, en := range entries {
			k := en.key
			l := labels.of(k, sc.collector == OffCPU)
			b.Add(symbolize.Sample{
				PID:       int(k.Tgid),
				User:      stacks.get(k.StackEpoch, k.UserStack),
				Kernel:    stacks.get(k.StackEpoch, k.KernelStack),
				Values:    en.values,
				Labels:    l.str,
				NumLabels: l.num,
			})
		}
		p := b.Profile()
		trimTracingFrames(p)
		p.TimeNanos = w.Start.UnixNano()
		p.DurationNanos = w.End.Sub(w.Start).Nanoseconds()
		// pprof shows the last sample type unless told: make it the time.
		switch sc.collector {
		case OnCPU:
			p.DefaultSampleType = "cpu"
			w.OnCPU = p
		case OffCPU:
			p.DefaultSampleType = "off_cpu"
			if n := s.opts.OffCPUSampling; n > 1 {
				p.Comments = append(p.Comments, fmt.Sprintf("off-CPU waits sampled 1 in %d at random; each counts %d times", n, n))
			}
			w.OffCPU = p
		case PageFaults:
			w.PageFaults = p
		}
	}
	s.sym.Trim()
	// Keep the parked stacks that waits still pending refer to.
	for ref := range s.parked {
		if !pending[ref] {
			delete(s.parked, ref)
		}
	}
	return stacks.missing, nil
}

// threadLabels are the label maps of a profile's samples by thread (and,
// off the CPU, the thread's state), made once per thread rather than per
// stack: a thread has many stacks in a window. Its samples share them,
// which is safe since nothing changes a sample's labels in place (pprof's
// Merge and Compact copy them).
type threadLabels map[threadLabelKey]sampleLabels

type threadLabelKey struct {
	tgid, tid    uint32
	comm, thread [16]int8
	state        uint32
}

type sampleLabels struct {
	str map[string][]string
	num map[string][]int64
}

func (t threadLabels) of(k oncpuStackKey, withState bool) sampleLabels {
	key := threadLabelKey{tgid: k.Tgid, tid: k.Tid, comm: k.Comm, thread: k.Thread}
	if withState {
		key.state = k.Kind + 1 // 0: no state label
	}
	if l, ok := t[key]; ok {
		return l
	}
	l := sampleLabels{
		str: map[string][]string{"comm": {cString(k.Comm[:])}, "thread": {cString(k.Thread[:])}},
		num: map[string][]int64{"pid": {int64(k.Tgid)}, "tid": {int64(k.Tid)}},
	}
	if withState {
		l.str["state"] = []string{taskState(k.Kind)}
	}
	t[key] = l
	return l
}

// parkStacks copies the stacks of epoch old that off-CPU waits refer to,
// from the pending waits and then from the counts of the epoch now
// ending, in that order: a wait that ends between the two reads is seen
// in one or the other. It returns every stack of epoch old or earlier
// that a pending wait refers to.
func (s *Session) parkStacks(old uint32) (map[stackRef]bool, error) {
	pending := map[stackRef]bool{}
	coll := s.objs[string(OffCPU)]
	if coll == nil {
		return pending, nil
	}
	park := func(ref stackRef) {
		if ref.id < 0 || ref.epoch != old {
			return
		}
		if _, ok := s.parked[ref]; ok || len(s.parked) >= maxParked {
			return
		}
		if pcs, ok := s.takeStack(old, ref.id); ok {
			s.parked[ref] = pcs
		}
	}
	_, starts, err := readAll[uint32, offcpuStart](coll.Maps["offcpu_start"])
	if err != nil {
		return nil, err
	}
	for _, start := range starts {
		k := start.Key
		if k.StackEpoch > old {
			continue
		}
		for _, id := range []int32{k.UserStack, k.KernelStack} {
			ref := stackRef{k.StackEpoch, id}
			pending[ref] = true
			park(ref)
		}
	}
	counts, _, err := readAll[oncpuStackKey, offcpuOffcpuValue](countsMap(coll, "offcpu_counts", s.epoch))
	for _, key := range counts {
		park(stackRef{key.StackEpoch, key.UserStack})
		park(stackRef{key.StackEpoch, key.KernelStack})
	}
	return pending, err
}

// newBuilder starts a profile with the collector's sample types.
func (s *Session) newBuilder(c Collector, period int64) *symbolize.Builder {
	vt := func(t, u string) *profile.ValueType { return &profile.ValueType{Type: t, Unit: u} }
	switch c {
	case OnCPU:
		return s.sym.NewBuilder([]*profile.ValueType{vt("samples", "count"), vt("cpu", "nanoseconds")}, vt("cpu", "nanoseconds"), period)
	case OffCPU:
		return s.sym.NewBuilder([]*profile.ValueType{vt("off_cpu", "nanoseconds"), vt("waits", "count")}, vt("off_cpu", "nanoseconds"), 1)
	default:
		return s.sym.NewBuilder([]*profile.ValueType{vt("faults", "count")}, vt("faults", "count"), 1)
	}
}

// drainStackCounts reads and deletes every bucket of a counts map of an
// epoch that has ended. On-CPU values are samples and their CPU time at
// period ns each.
func drainStackCounts(m *ebpf.Map, c Collector, period int64) ([]stackEntry, error) {
	var (
		out  []stackEntry
		keys []oncpuStackKey
		err  error
	)
	// Each entry's values are a slice of one array for all.
	switch c {
	case OffCPU:
		var vs []offcpuOffcpuValue
		keys, vs, err = readAll[oncpuStackKey, offcpuOffcpuValue](m)
		all := make([]int64, 0, 2*len(vs))
		out = make([]stackEntry, 0, len(vs))
		for i, v := range vs {
			all = append(all, int64(v.TotalNs), int64(v.Count))
			out = append(out, stackEntry{key: keys[i], values: all[2*i : 2*i+2 : 2*i+2]})
		}
	case OnCPU:
		var ns []uint64
		keys, ns, err = readAll[oncpuStackKey, uint64](m)
		all := make([]int64, 0, 2*len(ns))
		out = make([]stackEntry, 0, len(ns))
		for i, n := range ns {
			all = append(all, int64(n), int64(n)*period)
			out = append(out, stackEntry{key: keys[i], values: all[2*i : 2*i+2 : 2*i+2]})
		}
	default:
		var ns []uint64
		keys, ns, err = readAll[oncpuStackKey, uint64](m)
		all := make([]int64, 0, len(ns))
		out = make([]stackEntry, 0, len(ns))
		for i, n := range ns {
			all = append(all, int64(n))
			out = append(out, stackEntry{key: keys[i], values: all[i : i+1 : i+1]})
		}
	}
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		if _, err := m.BatchDelete(keys, nil); err != nil {
			return nil, fmt.Errorf("clearing counts: %w", err)
		}
	}
	return out, nil
}

// stackReader resolves stack ids during one Read: those of the epoch
// being drained and the one before from their maps (or the stacks already
// taken out of them), older ones from the parked stacks.
type stackReader struct {
	s       *Session
	current uint32 // the epoch being drained
	missing uint64 // lookups of sample stacks that failed
}

func (r *stackReader) get(epoch uint32, id int32) []uint64 {
	if id < 0 {
		return nil // no such stack: a kernel thread's user stack
	}
	var pcs []uint64
	if r.current-epoch <= 1 {
		pcs, _ = r.s.takeStack(epoch, id)
	} else {
		pcs = r.s.parked[stackRef{epoch, id}]
	}
	if pcs == nil {
		r.missing++
	}
	return pcs
}

// trimStack copies a stack map value up to its first zero.
func trimStack(raw []uint64) []uint64 {
	n := 0
	for n < len(raw) && raw[n] != 0 {
		n++
	}
	return append(make([]uint64, 0, n), raw[:n]...)
}

// maxStackDepth must match MAX_STACK_DEPTH in c/stacks.h.
const maxStackDepth = 127

// clearMap deletes every key of a map, such as a stack trace map, that
// supports neither batch operations nor recreation in place.
func clearMap(m *ebpf.Map) error {
	var (
		key  uint32
		keys []uint32
	)
	var next uint32
	for err := m.NextKey(nil, &next); err == nil; err = m.NextKey(key, &next) {
		keys = append(keys, next)
		key = next
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// isTracingFrame tells the kernel functions that run a tracepoint's BPF
// programs: the tracepoint's iterator (__traceiter_*), the BPF glue
// (__bpf_trace_*, bpf_trace_run*) and our program itself (bpf_prog_*).
func isTracingFrame(fn string) bool {
	for _, prefix := range []string{"__traceiter_", "__bpf_trace_", "bpf_trace_run", "bpf_prog_"} {
		if strings.HasPrefix(fn, prefix) {
			return true
		}
	}
	return false
}

// trimTracingFrames drops the frames of our own program and of the
// tracepoint dispatcher (see isTracingFrame) from the leaf end
// of kernel stacks taken inside a tp_btf program, so that stacks start
// where the traced event happened (__schedule, for off-CPU), as the same
// stack would from perf or offcputime.
func trimTracingFrames(p *profile.Profile) {
	tracing := func(l *profile.Location) bool {
		if l.Mapping != nil && l.Mapping.File == "[bpf]" {
			return true
		}
		for _, ln := range l.Line {
			if ln.Function != nil && isTracingFrame(ln.Function.Name) {
				return true
			}
		}
		return false
	}
	trimmed := false
	for _, smp := range p.Sample {
		n := 0
		for n < len(smp.Location) && tracing(smp.Location[n]) {
			n++
		}
		if n > 0 {
			smp.Location = smp.Location[n:]
			trimmed = true
		}
	}
	if !trimmed {
		return
	}
	used := map[*profile.Location]bool{}
	for _, smp := range p.Sample {
		for _, l := range smp.Location {
			used[l] = true
		}
	}
	locs := p.Location[:0]
	for _, l := range p.Location {
		if used[l] {
			locs = append(locs, l)
		}
	}
	p.Location = locs
}
