//go:build linux && amd64

package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/bpf/symbolize"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("bpf: session closed")

// generationGrace is how long Read waits after switching generations
// before draining the old one: programs that read the old generation just
// before the switch finish within microseconds.
const generationGrace = 2 * time.Millisecond

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

// readStacks switches the stack generation and drains the previous one's
// counts into profiles. It returns how many stacks were already gone.
func (s *Session) readStacks(w *Window) (missing uint64, err error) {
	gen := s.gen
	if s.shared["generation"] == nil {
		return 0, nil
	}
	next := (gen + 1) % generations
	if err := clearMap(s.shared[fmt.Sprintf("stacks%d", next)]); err != nil {
		return 0, fmt.Errorf("bpf: clearing stack map: %w", err)
	}
	if err := s.shared["generation"].Put(uint32(0), next); err != nil {
		return 0, fmt.Errorf("bpf: switching stack generation: %w", err)
	}
	s.gen = next
	time.Sleep(generationGrace)

	stacks := stackReader{maps: s.shared, cache: map[stackRef][]uint64{}}
	for _, sc := range stackCollectors {
		coll := s.objs[string(sc.collector)]
		if coll == nil {
			continue
		}
		period := int64(time.Second) / int64(s.opts.Frequency)
		entries, err := drainStackCounts(coll.Maps[fmt.Sprintf("%s%d", sc.counts, gen)], sc.collector, period)
		if err != nil {
			return 0, fmt.Errorf("bpf: reading %s: %w", sc.collector, err)
		}
		for _, e := range entries {
			s.watch(e.key.Tgid)
		}
		b := s.newBuilder(sc.collector)
		for _, e := range entries {
			user, kernel := stacks.get(e.key.StackGen, e.key.UserStack), stacks.get(e.key.StackGen, e.key.KernelStack)
			labels := map[string][]string{"comm": {cString(e.key.Comm[:])}, "thread": {cString(e.key.Thread[:])}}
			if sc.collector == OffCPU {
				labels["state"] = []string{taskState(e.key.Kind)}
			}
			b.Add(symbolize.Sample{
				PID:       int(e.key.Tgid),
				User:      user,
				Kernel:    kernel,
				Values:    e.values,
				Labels:    labels,
				NumLabels: map[string][]int64{"pid": {int64(e.key.Tgid)}, "tid": {int64(e.key.Tid)}},
			})
		}
		p := b.Profile()
		trimTracingFrames(p)
		p.TimeNanos = w.Start.UnixNano()
		p.DurationNanos = w.End.Sub(w.Start).Nanoseconds()
		switch sc.collector {
		case OnCPU:
			w.OnCPU = p
		case OffCPU:
			w.OffCPU = p
		case PageFaults:
			w.PageFaults = p
		}
	}
	return stacks.missing, nil
}

// newBuilder starts a profile with the collector's sample types.
func (s *Session) newBuilder(c Collector) *symbolize.Builder {
	vt := func(t, u string) *profile.ValueType { return &profile.ValueType{Type: t, Unit: u} }
	switch c {
	case OnCPU:
		period := int64(time.Second) / int64(s.opts.Frequency)
		return s.sym.NewBuilder([]*profile.ValueType{vt("samples", "count"), vt("cpu", "nanoseconds")}, vt("cpu", "nanoseconds"), period)
	case OffCPU:
		return s.sym.NewBuilder([]*profile.ValueType{vt("off_cpu", "nanoseconds"), vt("waits", "count")}, vt("off_cpu", "nanoseconds"), 1)
	default:
		return s.sym.NewBuilder([]*profile.ValueType{vt("faults", "count")}, vt("faults", "count"), 1)
	}
}

// drainStackCounts reads and deletes every bucket of a counts map that no
// program writes to any more (a previous generation).
// On-CPU values are samples and their CPU time at period ns each.
func drainStackCounts(m *ebpf.Map, c Collector, period int64) ([]stackEntry, error) {
	var (
		out  []stackEntry
		keys []oncpuStackKey
		key  oncpuStackKey
	)
	it := m.Iterate()
	switch c {
	case OffCPU:
		var v offcpuOffcpuValue
		for it.Next(&key, &v) {
			keys = append(keys, key)
			out = append(out, stackEntry{key: key, values: []int64{int64(v.TotalNs), int64(v.Count)}})
		}
	case OnCPU:
		var n uint64
		for it.Next(&key, &n) {
			keys = append(keys, key)
			out = append(out, stackEntry{key: key, values: []int64{int64(n), int64(n) * period}})
		}
	default:
		var n uint64
		for it.Next(&key, &n) {
			keys = append(keys, key)
			out = append(out, stackEntry{key: key, values: []int64{int64(n)}})
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		if _, err := m.BatchDelete(keys, nil); err != nil {
			return nil, fmt.Errorf("clearing counts: %w", err)
		}
	}
	return out, nil
}

// stackRef names one stack: its generation and id.
type stackRef struct {
	gen uint32
	id  int32
}

// stackReader looks up stack ids, caching within one Read.
type stackReader struct {
	maps    map[string]*ebpf.Map
	cache   map[stackRef][]uint64
	missing uint64
}

func (r *stackReader) get(gen uint32, id int32) []uint64 {
	if id < 0 || gen >= generations {
		return nil
	}
	ref := stackRef{gen, id}
	if pcs, ok := r.cache[ref]; ok {
		return pcs
	}
	var raw [maxStackDepth]uint64
	if err := r.maps[fmt.Sprintf("stacks%d", gen)].Lookup(uint32(id), &raw); err != nil {
		r.missing++
		r.cache[ref] = nil
		return nil
	}
	n := 0
	for n < len(raw) && raw[n] != 0 {
		n++
	}
	pcs := append([]uint64(nil), raw[:n]...)
	r.cache[ref] = pcs
	return pcs
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

// drainHash reads and deletes each element of a hash map that programs may
// still be updating: LookupAndDelete takes each element atomically, so
// no update is counted twice, and one that races the delete starts a fresh
// element for the next window.
func drainHash[K comparable, V any](m *ebpf.Map) (map[K]V, error) {
	var (
		keys []K
		k    K
	)
	it := m.Iterate()
	var skip V
	for it.Next(&k, &skip) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	out := make(map[K]V, len(keys))
	for _, k := range keys {
		var v V
		if err := m.LookupAndDelete(k, &v); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func (s *Session) readRunQueue() ([]RunQueueLatency, error) {
	coll := s.objs[string(RunQueue)]
	if coll == nil {
		return nil, nil
	}
	hists, err := drainHash[uint32, runqlatRunqHist](coll.Maps["runq_hists"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading run-queue latency: %w", err)
	}
	out := make([]RunQueueLatency, 0, len(hists))
	for pid, h := range hists {
		out = append(out, RunQueueLatency{PID: pid, Comm: cString(h.Comm[:]), Latency: histogramOf(h.Lat.Slots, h.Lat.Count, h.Lat.Sum)})
	}
	return out, nil
}

func (s *Session) readBlockIO() ([]BlockIOLatency, error) {
	coll := s.objs[string(BlockIO)]
	if coll == nil {
		return nil, nil
	}
	hists, err := drainHash[biolatBioKey, biolatBioValue](coll.Maps["bio_hists"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading block I/O latency: %w", err)
	}
	out := make([]BlockIOLatency, 0, len(hists))
	for k, v := range hists {
		dev := fmt.Sprintf("%d:%d", k.Dev>>20, k.Dev&(1<<20-1))
		out = append(out, BlockIOLatency{
			Device:  dev,
			Name:    blockDeviceName(dev),
			PID:     k.Tgid,
			Comm:    cString(v.Comm[:]),
			Op:      requestOp(k.Op),
			Latency: histogramOf(v.Lat.Slots, v.Lat.Count, v.Lat.Sum),
			Bytes:   histogramOf(v.Bytes.Slots, v.Bytes.Count, v.Bytes.Sum),
			Errors:  v.Errors,
		})
	}
	return out, nil
}

func (s *Session) readTCP() ([]TCPConnections, error) {
	coll := s.objs[string(TCP)]
	if coll == nil {
		return nil, nil
	}
	stats, err := drainHash[tcpConnKey, tcpConnStats](coll.Maps["tcp_stats"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading TCP: %w", err)
	}
	out := make([]TCPConnections, 0, len(stats))
	for k, v := range stats {
		var addr netip.Addr
		if k.Family == afInet6 {
			addr = netip.AddrFrom16(k.Daddr).Unmap()
		} else {
			addr = netip.AddrFrom4([4]byte(k.Daddr[:4]))
		}
		out = append(out, TCPConnections{
			PID:           k.Tgid,
			Comm:          cString(v.Comm[:]),
			Passive:       k.Passive != 0,
			Peer:          netip.AddrPortFrom(addr, k.Dport),
			Connect:       histogramOf(v.ConnectLat.Slots, v.ConnectLat.Count, v.ConnectLat.Sum),
			Failures:      v.Failures,
			Lifetime:      histogramOf(v.Lifetime.Slots, v.Lifetime.Count, v.Lifetime.Sum),
			BytesSent:     v.BytesSent,
			BytesReceived: v.BytesReceived,
			Retransmits:   v.Retransmits,
		})
	}
	return out, nil
}

const afInet6 = 10

// counterNames gives each object's counters index names, in the order of
// the enum in its C source.
var counterNames = map[string][]string{
	"oncpu":   {"samples", "idle", "map_full", "user_stack_lost", "kernel_stack_lost"},
	"offcpu":  {"switches", "recorded", "short", "start_full", "map_full", "user_stack_lost", "kernel_stack_lost"},
	"faults":  {"faults", "map_full", "user_stack_lost"},
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

// trimTracingFrames drops the frames of our own program and of the
// tracepoint dispatcher (bpf_trace_run*, __bpf_trace_*) from the leaf end
// of kernel stacks taken inside a tp_btf program, so that stacks start
// where the traced event happened (__schedule, for off-CPU), as the same
// stack would from perf or offcputime.
func trimTracingFrames(p *profile.Profile) {
	tracing := func(l *profile.Location) bool {
		if l.Mapping != nil && l.Mapping.File == "[bpf]" {
			return true
		}
		for _, ln := range l.Line {
			if ln.Function != nil && (strings.HasPrefix(ln.Function.Name, "bpf_trace_run") || strings.HasPrefix(ln.Function.Name, "__bpf_trace_") || strings.HasPrefix(ln.Function.Name, "bpf_prog_")) {
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
