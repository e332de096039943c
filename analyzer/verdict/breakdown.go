// Package verdict judges an observation: what the target is bound by, the
// evidence, and what to optimize first. It is pure: it reads the
// observation it is handed and nothing else, so a verdict can be
// reproduced from a saved observation.
package verdict

import (
	"hash/maphash"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Where a thread's wall-clock time goes. On-CPU time is split by what the
// CPU was doing; off-CPU time by why the thread was not running, told from
// its state and its stack when it left the CPU (see classifyWait in
// frames.go).
const (
	OnCPUUser      = "cpu.user"       // the program's own code and its libraries
	OnCPUGC        = "cpu.gc"         // Go garbage collection: marking, assists, sweeping
	OnCPUAlloc     = "cpu.alloc"      // Go allocation outside GC (mallocgc)
	OnCPUPageFault = "cpu.page_fault" // the kernel serving page faults
	OnCPUSyscall   = "cpu.syscall"    // the kernel serving system calls
	OnCPUKernel    = "cpu.kernel"     // other kernel work (interrupts, softirqs)

	WaitRunQueue = "wait.runqueue" // runnable, waiting for a CPU (preempted or woken)
	WaitDisk     = "wait.disk"     // block I/O: uninterruptible in io_schedule and friends
	WaitFault    = "wait.fault"    // a page fault waiting on I/O or reclaim
	WaitNetwork  = "wait.network"  // blocked on a socket: receive, send buffer, accept, connect
	WaitLock     = "wait.lock"     // futexes outside the Go runtime's own parking
	WaitPoll     = "wait.poll"     // epoll, poll or select outside the Go runtime: sockets or timers
	WaitSleep    = "wait.sleep"    // nanosleep and timers
	WaitIdle     = "wait.idle"     // Go runtime threads parked with nothing to run, idle kernel threads
	WaitOther    = "wait.other"    // any other wait (pipes, child processes, signals...)
)

// Breakdown is the target's thread time over the window, in seconds, by
// category (the constants above) and by the class each second counts
// towards. Source says where it came from.
type Breakdown struct {
	Seconds map[string]float64 `json:"seconds"`
	// ByClass is the same time by class. It is not a regrouping of the
	// categories: on-CPU time in the kernel's storage or network code, or
	// in lock handoffs, counts towards io, network or contention, since
	// that is the resource it is spent on.
	ByClass map[Class]float64 `json:"by_class"`
	// Source is "ebpf" (thread states and stacks), "proc" (/proc
	// counters, split by a pprof CPU profile when there is one), or ""
	// when the observation had neither.
	Source string `json:"source"`
	// ThreadStates says a "proc" breakdown's waits are the process's
	// thread states sampled from /proc, not measured.
	ThreadStates bool `json:"thread_states,omitempty"`
	// RunQueueCPU is the part of the wait.runqueue seconds that counts
	// towards cpu (not a lock's hand-off's or a yield's): the cpu load's
	// share spent waiting for a CPU, which choose takes out of it.
	RunQueueCPU float64 `json:"run_queue_cpu,omitempty"`
}

// Total is the thread time accounted for.
func (b Breakdown) Total() float64 {
	var t float64
	for _, v := range b.Seconds {
		t += v
	}
	return t
}

// Share is a category's part of the total, 0 when there is none.
func (b Breakdown) Share(category string) float64 {
	if t := b.Total(); t > 0 {
		return b.Seconds[category] / t
	}
	return 0
}

// The categories' prefixes say their side: on a CPU, or waiting off it.
// They are the names of the JSON report, as the constants above.
const (
	onCPUPrefix = "cpu."
	waitPrefix  = "wait."
)

// Group is one side of a breakdown, on-CPU or off-CPU, with its
// categories that have time, most first.
type Group struct {
	Label      string // "on-CPU", "off-CPU"
	OnCPU      bool   // the on-CPU side
	Seconds    float64
	Categories []string
}

// Groups splits the breakdown into its on-CPU and off-CPU sides, the
// sides without time left out: what every report's breakdown table, the
// breakdown's evidence and a host's ranked processes read. A category of
// neither side is in no group.
func (b Breakdown) Groups() []Group {
	var out []Group
	for _, g := range []struct {
		prefix, label string
		onCPU         bool
	}{{onCPUPrefix, "on-CPU", true}, {waitPrefix, "off-CPU", false}} {
		grp := Group{Label: g.label, OnCPU: g.onCPU}
		for c, s := range b.Seconds {
			if strings.HasPrefix(c, g.prefix) && s > 0 {
				grp.Seconds += s
				grp.Categories = append(grp.Categories, c)
			}
		}
		if grp.Seconds == 0 {
			continue
		}
		sort.Slice(grp.Categories, func(i, j int) bool {
			ci, cj := grp.Categories[i], grp.Categories[j]
			si, sj := b.Seconds[ci], b.Seconds[cj]
			return si > sj || si == sj && ci < cj
		})
		out = append(out, grp)
	}
	return out
}

// SourceText says where a breakdown's numbers came from, for a report.
func (b Breakdown) SourceText() string {
	switch b.Source {
	case BreakdownEBPF:
		return "from eBPF thread states and stacks"
	case BreakdownProc:
		if b.ThreadStates {
			return "from /proc CPU time and run delay, split by a pprof CPU profile where there is one, and thread states sampled from /proc"
		}
		return "from /proc CPU time and run delay, split by a pprof CPU profile where there is one"
	}
	return b.Source
}

// CategoryName says a breakdown category for a person ("block I/O" for
// wait.disk); the category itself when it has no name.
func CategoryName(category string) string {
	if n := categoryNames[category]; n != "" {
		return n
	}
	return category
}

// BreakdownOf splits the target's thread time from the observation's eBPF
// on-CPU and off-CPU profiles.
func BreakdownOf(o *observation.Observation) Breakdown {
	pk := parkingOf(o)
	cl := newClassifier(pk)
	return breakdownOf(o, pk, callSitesOf(o, cl), cl)
}

// breakdownOf is BreakdownOf with the processes' futex parking and the
// system calls' sites measured already, and the stacks classified by cl
// (Judge does each once for the breakdown and the priorities).
func breakdownOf(o *observation.Observation, pk parking, sites callSites, cl *classifier) Breakdown {
	b := Breakdown{Seconds: map[string]float64{}, ByClass: map[Class]float64{}}
	for _, p := range o.Profiles {
		if p.Source != observation.SourceEBPF {
			continue
		}
		switch p.Kind {
		case observation.KindCPU:
			idx := sampleIndex(p.Profile, "cpu")
			for _, s := range p.Profile.Sample {
				st := cl.of(s)
				v := nanos(s, idx)
				if calls := sites.of(s, st); calls != nil {
					// At a call's boundary: the call's time.
					b.Seconds[OnCPUSyscall] += v
					for _, c := range calls {
						b.ByClass[c.class] += v * c.share
					}
					continue
				}
				b.Seconds[st.cat] += v
				b.ByClass[st.class] += v
			}
			b.Source = BreakdownEBPF
		case observation.KindOffCPU:
			idx := sampleIndex(p.Profile, "off_cpu")
			for _, s := range p.Profile.Sample {
				sc := cl.ofWait(s)
				fns := sc.fns
				cat, v := classifyWait(sampleState(s), fns), nanos(s, idx)
				if cat == WaitLock {
					// Futex waits nobody could be holding a lock for
					// are idle parking (see parking).
					share := pk.lockShare(s, fns)
					b.Seconds[WaitIdle] += (1 - share) * v
					b.ByClass[ClassNone] += (1 - share) * v
					v *= share
				}
				b.Seconds[cat] += v
				class := sc.waitClass(cat)
				if cat == WaitRunQueue && class == ClassCPU {
					if lock := sites.lockHandoff(s, sc, pk); lock > 0 {
						b.ByClass[ClassContention] += lock * v
						v *= 1 - lock
					}
					b.RunQueueCPU += v
				}
				b.ByClass[class] += v
			}
			b.Source = BreakdownEBPF
		}
	}
	return b
}

// stackClass is what an on-CPU stack's frames say: its category, its
// class, the system call it is in ("" for none) and the frames; yield
// marks a yield of the program's own (programYield) and fileLock the file
// locks' code (fileLockCode), each contention as classifier.settle says.
type stackClass struct {
	fns      []string
	cat      string
	class    Class
	op       string
	yield    bool
	fileLock bool
}

// waitClass is the class a wait of category cat in this stack counts
// towards: waitClassOf's, but a wait for a CPU that a yield asked for, or
// in a contended file lock's code, is contention (classifier.settle).
func (sc stackClass) waitClass(cat string) Class {
	if cat == WaitRunQueue && (sc.yield || sc.fileLock) {
		return ClassContention
	}
	return waitClassOf(cat, sc.fns)
}

// classifier works out what each stack says once per verdict: a
// profile's samples of many threads, windows and processes share their
// locations, and classifying by prefix lists is most of a verdict's time.
type classifier struct {
	seed        maphash.Seed
	onCPU, wait map[uint64]stackClass
	pk          parking // how many threads each process has, whether file locks were waited on
}

// newClassifier is a classifier of stacks, pk the parking of their
// processes.
func newClassifier(pk parking) *classifier {
	return &classifier{seed: maphash.MakeSeed(), onCPU: map[uint64]stackClass{}, wait: map[uint64]stackClass{}, pk: pk}
}

// of is what an on-CPU sample's stack says.
func (c *classifier) of(s *profile.Sample) stackClass {
	return c.settle(s, c.memo(c.onCPU, s, func(fns []string) stackClass {
		sc := stackClass{fns: fns, cat: classifyOnCPU(s), op: syscallOf(fns), fileLock: has(fns, fileLockCode...)}
		sc.class = onCPUClass(sc.cat, fns)
		sc.yield = programYield(sc.op, fns) || sc.cat == OnCPUUser && len(fns) > 0 && programYield(cSyscallStub(fns[0]), fns)
		return sc
	}))
}

// ofWait is what an off-CPU sample's stack says: its frames, the system
// call it waits in, and the class the call's time on a CPU counts
// towards (the category is the thread state's, not the stack's).
func (c *classifier) ofWait(s *profile.Sample) stackClass {
	return c.settle(s, c.memo(c.wait, s, classifyWaitStack))
}

// classifyWaitStack is ofWait's work on an off-CPU stack's frames.
func classifyWaitStack(fns []string) stackClass {
	sc := stackClass{fns: fns, op: syscallOf(fns), fileLock: has(fns, fileLockCode...)}
	if sc.op != "" {
		sc.class = onCPUClass(OnCPUSyscall, fns)
	}
	sc.yield = programYield(sc.op, fns)
	return sc
}

// settle decides what depends on more than the stack. A yield of a
// process of several threads is contention: its time on a CPU and the
// wait for one it asked for are spent waiting on another of the
// process's threads (yieldCalls); a process of one thread has none of its
// own to wait on (stress-ng's yield stressor yields for its own sake).
// The file locks' code is contention when some thread slept in it in the
// window: a lock nobody waits for costs its calls, not contention.
func (c *classifier) settle(s *profile.Sample, sc stackClass) stackClass {
	if sc.yield && !c.threaded(s) {
		sc.yield = false
	}
	if sc.fileLock && !c.pk.fileLocksWaited() {
		sc.fileLock = false
	}
	if sc.yield || sc.fileLock {
		sc.class = ClassContention
	}
	return sc
}

// threaded tells a sample of a process of several threads.
func (c *classifier) threaded(s *profile.Sample) bool { return c.pk.threads(samplePID(s)) >= 2 }

// memo is work(frames(s)), worked out at the first sample of s's stack.
func (c *classifier) memo(m map[uint64]stackClass, s *profile.Sample, work func(fns []string) stackClass) stackClass {
	k := locationsHash(c.seed, s)
	sc, ok := m[k]
	if !ok {
		sc = work(frames(s))
		m[k] = sc
	}
	return sc
}

func nanos(s *profile.Sample, idx int) float64 {
	if idx < 0 || idx >= len(s.Value) {
		return 0
	}
	return float64(s.Value[idx]) / float64(time.Second)
}

func sampleIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

// waitClass is the class each kind of wait counts towards.
var waitClass = map[string]Class{
	WaitRunQueue: ClassCPU,
	WaitDisk:     ClassIO,
	WaitFault:    ClassMemory,
	WaitNetwork:  ClassNetwork,
	WaitLock:     ClassContention,
	WaitPoll:     ClassNone,
	WaitSleep:    ClassNone,
	WaitIdle:     ClassNone,
	WaitOther:    ClassNone,
}

// waitClassOf is the class a wait counts towards: waitClass's, but for a
// wait for a CPU inside a lock's code: a thread preempted while taking or
// handing over a contended lock (Go's or the C library's lock code, the
// kernel's own locks), or runnable again in its futex wait, waits for the
// lock's sake. A futex alone does not say lock (condition variables and
// thread pools park on futexes too: see parking).
func waitClassOf(category string, fns []string) Class {
	if category == WaitRunQueue && (has(fns, lockMachinery...) || has(fns, kernelLocks...)) {
		return ClassContention
	}
	return waitClass[category]
}

// onCPUClass is the class a category of on-CPU time counts towards, from
// the sample's frames for the kernel's share of it: kernel work counts
// towards the resource it serves (docs/analysis.md lists which system
// calls go where).
func onCPUClass(category string, fns []string) Class {
	switch category {
	case OnCPUGC, OnCPUAlloc, OnCPUPageFault:
		return ClassMemory
	}
	switch {
	case has(fns, lockMachinery...), has(fns, kernelLocks...):
		return ClassContention
	case (has(fns, futexCall...) || hasExact([]string{syscallOf(fns)}, futexCalls...)) && !inGoRuntime(fns):
		// A futex call outside the Go runtime is a lock (or condition)
		// handed over; the runtime's own park and wake threads.
		return ClassContention
	case category == OnCPUUser && len(fns) > 0 && isMemoryCall(cSyscallStub(fns[0])):
		// A sample in a C library's stub of a memory call is the
		// call's: its few instructions hold the timer interrupt that
		// fired while the kernel had interrupts off, delivered on the
		// return to user space.
		return ClassMemory
	case category == OnCPUUser:
		return ClassCPU
	}
	// The stack first (an interrupt's softirq inside a system call is
	// the softirq's work), then the call it is in.
	switch op := syscallOf(fns); {
	case has(fns, reclaimStack...), has(fns, memoryStack...):
		return ClassMemory
	case has(fns, storageStack...):
		return ClassIO
	case has(fns, networkStack...):
		return ClassNetwork
	case hasExact([]string{op}, memoryCalls...):
		return ClassMemory
	case hasExact([]string{op}, fileCalls...):
		return ClassIO
	case hasExact([]string{op}, socketCalls...):
		return ClassNetwork
	}
	return ClassCPU
}
