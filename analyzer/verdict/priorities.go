package verdict

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Remedy families. Each priority names the one its evidence points to.
const (
	RemedyAlgorithm   = "algorithm"         // the code's own work: do less of it per call, or call it less
	RemedyCaching     = "caching"           // the same work or data again: keep the result
	RemedyBatching    = "batching"          // many small syscalls or flushes: fewer, larger ones
	RemedyAsync       = "async"             // waiting on a peer in line: overlap the waits
	RemedyPooling     = "connection reuse"  // many short connections: keep them open
	RemedyAllocations = "fewer allocations" // allocation and the GC it drives: reuse, pre-size, pool
	RemedyGCTuning    = "GC tuning"         // GOGC / GOMEMLIMIT: trade memory for GC CPU
	RemedyIOPattern   = "I/O pattern"       // small or random I/O: larger, sequential, or cached
	RemedyLockScope   = "lock scope"        // a hot lock: shorter critical sections, sharding
	RemedyMemory      = "memory reuse"      // fresh pages faulted in: reuse buffers, huge pages
	RemedyMappings    = "mapping reuse"     // mmap, munmap, madvise churn: keep memory mapped and reuse it, huge pages
	RemedyMemoryShort = "memory headroom"   // reclaim and compaction: use less memory, or give the host or cgroup more
	RemedyLessData    = "less data"         // a transfer bound by its bytes: compress, or send less
)

// priorities ranks what to optimize first, by the thread time per second
// each item would save if it cost nothing. pollPeers says the network load
// was inferred from an event loop's waits in epoll or poll (inference).
func priorities(o *observation.Observation, v *Verdict, pk parking, sites callSites, cl *classifier, pollPeers bool, window float64, th Thresholds) []Priority {
	var busy float64
	for _, c := range Classes {
		busy += v.Load[c]
	}
	var items []Priority
	add := func(p Priority) {
		if p.Saving >= 0.005 {
			items = append(items, p)
		}
	}
	cpu, cpuSource := cpuProfile(o)
	if cpu != nil {
		scale := 1.0
		if cpuSource != observation.SourceEBPF {
			// A Go profile's samples are its own; scale them to the
			// process's measured CPU time when there is one.
			if total := profileSeconds(cpu, "cpu"); total > 0 {
				if cores, ok := meanOf(o, observation.ProcessCPU, nil); ok {
					scale = cores * window / total
				}
			}
		}
		cpuSites := sites
		if cpuSource != observation.SourceEBPF {
			cpuSites = callSites{} // only eBPF's samples are taken at a call's boundary by its interrupts
		}
		for _, p := range cpuItems(cpu, cpuSites, cl, cpuSource, scale, window) {
			add(p)
		}
	}
	if off := ebpfProfile(o, observation.KindOffCPU); off != nil {
		for _, p := range waitItems(off, sites, cl, pk, window) {
			add(p)
		}
	}
	for _, p := range goLockItems(o, window, cpuCount(o)) {
		add(p)
	}
	for _, p := range peerItems(o, v, pollPeers, window) {
		add(p)
	}
	items = merge(foldRuntime(items))
	sort.SliceStable(items, func(i, j int) bool { return items[i].Saving > items[j].Saving })
	if busy > 0 {
		// Under 1% of the busy time is not where to start.
		kept := items[:0]
		for _, p := range items {
			if p.Saving >= 0.01*busy {
				kept = append(kept, p)
			}
		}
		items = kept
	}
	if len(items) > th.MaxPriorities {
		items = items[:th.MaxPriorities]
	}
	for i := range items {
		items[i].Rank = i + 1
		if busy > 0 {
			items[i].Share = math.Min(1, items[i].Saving/busy)
		}
	}
	return items
}

// cpuProfile is the target's on-CPU profile: eBPF's, else the Go runtime's.
func cpuProfile(o *observation.Observation) (*profile.Profile, observation.ProfileSource) {
	if p := ebpfProfile(o, observation.KindCPU); p != nil {
		return p, observation.SourceEBPF
	}
	for _, p := range o.ProfilesOf(observation.KindCPU) {
		if p.Profile != nil && sampleIndex(p.Profile, "cpu") >= 0 {
			return p.Profile, p.Source
		}
	}
	return nil, ""
}

func ebpfProfile(o *observation.Observation, kind observation.ProfileKind) *profile.Profile {
	for _, p := range o.ProfilesOf(kind) {
		if p.Source == observation.SourceEBPF && p.Profile != nil {
			return p.Profile
		}
	}
	return nil
}

func profileSeconds(p *profile.Profile, typ string) float64 {
	idx := sampleIndex(p, typ)
	var s float64
	for _, smp := range p.Sample {
		s += nanos(smp, idx)
	}
	return s
}

// tally sums seconds by key, keeping a description per key.
type tally struct {
	seconds map[string]float64
	order   []string
	item    map[string]Priority
}

func newTally() *tally {
	return &tally{seconds: map[string]float64{}, item: map[string]Priority{}}
}

func (t *tally) add(key string, seconds float64, p Priority) {
	if _, ok := t.item[key]; !ok {
		t.item[key] = p
		t.order = append(t.order, key)
	}
	t.seconds[key] += seconds
}

func (t *tally) priorities(window float64, why func(p Priority, seconds float64) string) []Priority {
	var out []Priority
	for _, k := range t.order {
		p := t.item[k]
		p.Saving = t.seconds[k] / window
		p.Why = why(p, t.seconds[k])
		out = append(out, p)
	}
	return out
}

// cpuItems are the on-CPU costs: functions by their own time for the CPU
// class, allocation sites and the collector for memory, and the code
// behind kernel storage, network or lock work.
func cpuItems(p *profile.Profile, sites callSites, cl *classifier, source observation.ProfileSource, scale, window float64) []Priority {
	idx := sampleIndex(p, "cpu")
	t, yields := newTally(), newTally() // yields: a yield waiting on other threads (yieldCalls)
	var gc float64
	// kernelWork is kernel work on the target's behalf, or a lock's
	// handoff: by the code that asked for it.
	kernelWork := func(s *profile.Sample, fns []string, secs float64, class Class, op string) {
		c := callerOutside(s, "")
		name := siteName(class, op, "kernel work", c)
		remedy := RemedyBatching
		switch {
		case class == ClassContention:
			remedy = RemedyLockScope
		case class == ClassMemory && mappingWork(op, fns):
			remedy = RemedyMappings
		case class == ClassMemory:
			remedy = RemedyMemoryShort
		}
		into := t
		if class == ClassContention && programYield(op, fns) && cl.threaded(s) { // a yield's, as classifier.settle decides
			into = yields
		}
		into.add(string(class)+"|"+name, secs, Priority{Class: class, Kind: kindOf(class, op), Name: name, Remedy: remedy, runtimeWork: c.inRuntime})
	}
	for _, s := range p.Sample {
		secs := nanos(s, idx) * scale
		sc := cl.of(s)
		cat, fns, class := sc.cat, sc.fns, sc.class
		if calls := sites.of(s, sc); calls != nil {
			// At a call's boundary: the call's time (callSites).
			for _, c := range calls {
				kernelWork(s, fns, secs*c.share, c.class, c.op)
			}
			continue
		}
		switch {
		case cat == OnCPUGC:
			gc += secs
		case cat == OnCPUAlloc:
			c := callerOutside(s, goRuntime)
			site := c.name
			if c.callersUnseen() {
				// The stack ends in the allocator's library.
				site = "allocation in " + site + " (callers unseen: no frame pointers)"
			}
			t.add("alloc|"+site, secs, Priority{Class: ClassMemory, Kind: PriorityAllocation, Name: site, Remedy: RemedyAllocations})
		case cat == OnCPUPageFault:
			c := callerOutside(s, goRuntime)
			t.add("fault|"+c.name, secs, Priority{Class: ClassMemory, Kind: PriorityPageFaults, Name: c.name, Remedy: RemedyMemory, runtimeWork: c.inRuntime})
		case class == ClassCPU && syscallOf(fns) == "" && !isSyscallWrapper(leafUserFunction(s)):
			// The code's own work, interrupts taken while running it
			// included: by the innermost function outside the kernel.
			fn := leafUserFunction(s)
			remedy := RemedyAlgorithm
			name, rt := fn, IsGoRuntime(fn)
			if isLibrary(fn) {
				remedy = RemedyCaching
				if c := callerOutside(s, packageOf(fn)); c.name != fn {
					name, rt = fn+" from "+c.name, rt || c.inRuntime
				}
			}
			t.add("fn|"+name, secs, Priority{Class: ClassCPU, Kind: PriorityFunction, Name: name, Remedy: remedy, runtimeWork: rt})
		default:
			op := sc.op
			if op == "" && cat == OnCPUUser {
				op = cSyscallStub(leafUserFunction(s)) // a memory call's stub (onCPUClass)
			}
			kernelWork(s, fns, secs, class, op)
		}
	}
	signal := "eBPF on-CPU"
	if source != observation.SourceEBPF {
		signal = "Go CPU profile, scaled to process.cpu"
	}
	out := t.priorities(window, func(p Priority, secs float64) string {
		switch p.Kind {
		case PriorityAllocation:
			if gc == 0 {
				return fmt.Sprintf("%.2f s/s in the allocator for this code (%s)", secs/window, signal)
			}
			return fmt.Sprintf("%.2f s/s allocating here (%s), plus the GC it drives (the gc item)", secs/window, signal)
		case PriorityPageFaults:
			return fmt.Sprintf("%.2f s/s faulting in fresh pages (%s)", secs/window, signal)
		case PriorityFunction:
			if p.Remedy == RemedyCaching {
				return fmt.Sprintf("%.2f s/s in library code doing the caller's work (%s): call it less or on less data, and keep results", secs/window, signal)
			}
			if p.Name == JITCode {
				return fmt.Sprintf("%.2f s/s in JIT-compiled code that no perf map names (%s): have the runtime write /tmp/perf-PID.map "+
					"(Java: jcmd PID Compiler.perfmap while it runs, or -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit for a run watched to its end; Node: --perf-basic-prof) "+
					"and its functions are named", secs/window, signal)
			}
			return fmt.Sprintf("%.2f s/s in the function's own code (%s)", secs/window, signal)
		}
		switch p.Class {
		case ClassIO:
			return fmt.Sprintf("%.2f s/s on CPU in the kernel's storage stack for this call (%s)", secs/window, signal)
		case ClassNetwork:
			return fmt.Sprintf("%.2f s/s on CPU in the kernel's network stack for this call (%s)", secs/window, signal)
		case ClassContention:
			return fmt.Sprintf("%.2f s/s on CPU handing a contended lock over (%s)", secs/window, signal)
		case ClassMemory:
			if p.Remedy == RemedyMemoryShort {
				return fmt.Sprintf("%.2f s/s on CPU in the kernel reclaiming or compacting memory for this call: the host or its cgroup was short of free pages (%s)", secs/window, signal)
			}
			return fmt.Sprintf("%.2f s/s on CPU in the kernel's memory management for this call: page tables, TLB shootdowns, the mm lock (%s)", secs/window, signal)
		}
		return fmt.Sprintf("%.2f s/s on CPU in the kernel for this call (%s)", secs/window, signal)
	})
	out = append(out, yields.priorities(window, func(p Priority, secs float64) string {
		return fmt.Sprintf("%.2f s/s on CPU in sched_yield, giving the CPU to other threads (%s): block on the lock or condition instead of spinning", secs/window, signal)
	})...)
	if gc > 0 {
		out = append(out, Priority{Class: ClassMemory, Kind: PriorityGC, Name: "Go garbage collection", Saving: gc / window, Remedy: RemedyGCTuning,
			Why: fmt.Sprintf("%.2f s/s in the collector (%s): raise GOGC or set GOMEMLIMIT if memory allows, else allocate less (the allocation items)", gc/window, signal)})
	}
	return out
}

// waitItems are the off-CPU waits that count towards a class, by the
// operation and the code that waited.
func waitItems(p *profile.Profile, sites callSites, cl *classifier, pk parking, window float64) []Priority {
	idx := sampleIndex(p, "off_cpu")
	t, runq := newTally(), newTally() // runq: waits for a CPU after a lock handoff
	yields := newTally()              // waits for a CPU a yield asked for (yieldCalls)
	for _, s := range p.Sample {
		sc := cl.ofWait(s)
		fns := sc.fns
		cat := classifyWait(sampleState(s), fns)
		class := sc.waitClass(cat)
		v := nanos(s, idx)
		if cat == WaitRunQueue && class == ClassCPU {
			class, v = ClassContention, v*sites.lockHandoff(s, sc, pk)
		}
		if class == ClassNone || class == ClassCPU || v == 0 {
			continue
		}
		if cat == WaitLock {
			if v *= pk.lockShare(s, fns); v == 0 {
				continue
			}
		}
		op := syscallOf(fns)
		c := callerOutside(s, "")
		name := siteName(class, op, "", c)
		into := t
		switch {
		case cat == WaitRunQueue && sc.yield:
			into = yields
		case cat == WaitRunQueue:
			into = runq
		}
		into.add(cat+"|"+name, v, Priority{Class: class, Kind: kindOf(class, op), Name: name, Remedy: waitRemedy(cat, op, fns), runtimeWork: c.inRuntime})
	}
	return slices.Concat(t.priorities(window, func(p Priority, secs float64) string {
		return fmt.Sprintf("threads waited %.2f s per second here (eBPF off-CPU)", secs/window)
	}), runq.priorities(window, func(p Priority, secs float64) string {
		return fmt.Sprintf("threads waited %.2f s per second for a CPU here, preempted in the lock's code (eBPF off-CPU)", secs/window)
	}), yields.priorities(window, func(p Priority, secs float64) string {
		return fmt.Sprintf("threads waited %.2f s per second for a CPU after yielding it here (eBPF off-CPU)", secs/window)
	}))
}

// waitRemedy reads the remedy off what the wait was.
func waitRemedy(cat, op string, fns []string) string {
	switch cat {
	case WaitDisk:
		switch {
		case isFlushCall(op):
			return RemedyBatching
		case has(fns, directIO...) || isReadCall(op):
			return RemedyIOPattern
		}
		return RemedyBatching
	case WaitNetwork:
		switch {
		case has(fns, connectWait...):
			return RemedyPooling
		case has(fns, sendBufferWait...):
			return RemedyBatching
		}
		return RemedyAsync
	case WaitLock, WaitRunQueue:
		// A wait for a CPU counts only when a lock handoff caused it. A
		// wait for the kernel's mm lock is cut by fewer mapping calls.
		if mappingWork(op, fns) && has(fns, kernelLockWait...) {
			return RemedyMappings
		}
		return RemedyLockScope
	case WaitFault:
		return RemedyMemory
	}
	return RemedyAlgorithm
}

// goLockItems are the Go lock sites where goroutines waited, from the
// mutex profile (else the block profile's lock waits).
func goLockItems(o *observation.Observation, window, cpus float64) []Priority {
	var prof *profile.Profile
	var signal string
	keep := func([]string) bool { return true }
	for _, p := range o.ProfilesOf(observation.KindMutex) {
		prof, signal = p.Profile, "Go mutex profile"
	}
	if prof == nil {
		for _, kind := range []observation.ProfileKind{observation.KindBlock, observation.KindContention} {
			for _, p := range o.ProfilesOf(kind) {
				prof, signal, keep = p.Profile, "Go "+string(kind)+" profile", isLockWait
			}
		}
	}
	if prof == nil || sampleIndex(prof, "delay") < 0 {
		return nil
	}
	idx := sampleIndex(prof, "delay")
	t := newTally()
	for _, s := range prof.Sample {
		if !keep(frames(s)) {
			continue
		}
		c := callerOutside(s, goSync)
		t.add(c.name, nanos(s, idx), Priority{Class: ClassContention, Kind: PriorityLock, Name: c.name, Remedy: RemedyLockScope, runtimeWork: c.inRuntime})
	}
	out := t.priorities(window, func(p Priority, secs float64) string {
		return fmt.Sprintf("goroutines waited %.2f s per second on the lock released or taken here (%s); counted as at most %.0f, one per CPU", secs/window, signal, cpus)
	})
	for i := range out {
		out[i].Saving = math.Min(out[i].Saving, cpus)
	}
	return out
}

// peerItems are the TCP peers a Go program's goroutines waited on, when
// the network load was inferred from connection times. Where threads
// block in the socket calls themselves (C, Python...), the off-CPU items
// already name the waits, and the peers are in the evidence.
func peerItems(o *observation.Observation, v *Verdict, pollPeers bool, window float64) []Priority {
	var out []Priority
	threadWaits := v.Breakdown.Seconds[WaitNetwork]
	for _, c := range connections(o) {
		if threadWaits >= c.open/2 {
			continue
		}
		if c.passive || c.open == 0 {
			continue
		}
		remedy := RemedyAsync
		switch {
		case float64(c.conns)/window >= 10 && c.connectP50 >= 100e3:
			remedy = RemedyPooling
		case float64(c.sent+c.received)/c.open >= 10<<20:
			// Bytes moving at 10 MiB/s or more for as long as the
			// connections are open: the transfer, not the peer's
			// answers, takes the time.
			remedy = RemedyLessData
		}
		out = append(out, Priority{Class: ClassNetwork, Kind: PriorityPeer, Name: c.addr, Remedy: remedy,
			Saving: math.Min(c.open/window, v.Load[ClassNetwork]), Why: c.String() + " (eBPF TCP)"})
	}
	if len(out) == 0 && pollPeers {
		out = pollPeerItems(o, v)
	}
	return out
}

// pollPeerItems are the peers an event loop waited on, when its network
// load came from its waits in epoll or poll while its connections carried
// data (socketWaitLoad): connections still open at the end of the window
// have no lifetime yet, so the load is shared among the peers it
// connected to.
func pollPeerItems(o *observation.Observation, v *Verdict) []Priority {
	var peers []peer
	for _, c := range connections(o) {
		if !c.passive {
			peers = append(peers, c)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	remedy := RemedyAsync
	if r, ok := meanOf(o, observation.ProcessTCPBytes, map[string]string{"role": "active"}); ok && r >= 10<<20 {
		remedy = RemedyLessData // moving 10 MiB/s or more: the transfer takes the time
	}
	out := make([]Priority, 0, len(peers))
	for _, c := range peers {
		out = append(out, Priority{Class: ClassNetwork, Kind: PriorityPeer, Name: c.addr, Remedy: remedy,
			Saving: v.Load[ClassNetwork] / float64(len(peers)),
			Why:    "waited on in epoll or poll while the connections were busy; " + c.String() + " (eBPF TCP)"})
	}
	return out
}

func kindOf(class Class, op string) string {
	switch {
	case class == ClassContention:
		return PriorityLock
	case op != "":
		return PrioritySyscall
	}
	return PriorityFunction
}

// merge joins the items of one class and name (the same fsync seen on CPU
// and off it), adding their savings; the larger part names the remedy.
func merge(items []Priority) []Priority {
	var out []Priority
	at := map[string]int{}
	for _, p := range items {
		k := string(p.Class) + "|" + p.Name
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, p)
			continue
		}
		q := &out[i]
		if p.Saving > q.Saving {
			q.Kind, q.Remedy = p.Kind, p.Remedy
			q.Why = p.Why + "; " + q.Why
		} else {
			q.Why += "; " + p.Why
		}
		q.Saving += p.Saving
	}
	return out
}

// foldRuntime makes one item of the Go runtime's own work (scheduling,
// timers, thread wakeups): nobody optimizes runtime.futex, but a program
// can wake fewer goroutines and set fewer timers.
func foldRuntime(items []Priority) []Priority {
	out := items[:0]
	var rt Priority
	for _, p := range items {
		if p.Kind != PriorityGC && p.Kind != PriorityAllocation && p.runtimeWork {
			rt.Saving += p.Saving
			continue
		}
		out = append(out, p)
	}
	if rt.Saving > 0 {
		out = append(out, Priority{Class: ClassCPU, Kind: PriorityRuntime, Name: "the Go runtime's own work", Saving: rt.Saving, Remedy: RemedyBatching,
			Why: "scheduling, timers and thread wakeups, on CPU: fewer goroutine handoffs, timers and sleeps cut it"})
	}
	return out
}

// siteName names kernel work or a wait by the code that asked for it: a
// lock by its site, so that its handoffs on CPU meet its waits; a call by
// the syscall ("fsync from main.fsyncLoop"), or what when none shows.
func siteName(class Class, op, what string, c caller) string {
	switch {
	case class == ClassContention:
		return lockSite(c)
	case op != "":
		return op + " from " + c.name
	case what != "":
		return what + " from " + c.name
	}
	return c.name
}

// lockSite names a lock by the code that takes it; when the stack ends in
// a library (glibc keeps no frame pointers), by the library.
func lockSite(c caller) string {
	if c.callersUnseen() {
		return "a lock taken in " + c.name + " (callers unseen: no frame pointers)"
	}
	return c.name
}
