package verdict

import (
	"maps"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// procBreakdown is the breakdown without eBPF: CPU time from /proc (split
// into user code, GC, allocation and syscalls by a pprof CPU profile when
// the observation has one), run-queue delay from schedstat, and the waits
// from the process's sampled thread states (threadstates.go), or, without
// them, I/O and memory stalls from its delay accounting and PSI, which
// cannot tell a thread's other sleeps apart (network, locks and timers).
// The verdict built on it carries a lower confidence and says what is
// missing.
func procBreakdown(o *observation.Observation, window float64, th Thresholds) Breakdown {
	b := Breakdown{Seconds: map[string]float64{}, ByClass: map[Class]float64{}}
	add := func(category string, class Class, seconds float64) {
		if seconds > 0 {
			b.Seconds[category] += seconds
			b.ByClass[class] += seconds
			if category == WaitRunQueue && class == ClassCPU {
				b.RunQueueCPU += seconds
			}
		}
	}
	host := hostLike(o.Meta.Target)
	var user, system float64
	var ok bool
	if host {
		var okU, okS bool
		user, okU = sumMeans(o, observation.HostCPU, "user", "nice")
		system, okS = sumMeans(o, observation.HostCPU, "system", "irq", "softirq")
		ok = okU || okS
		// perfhound's own threads are not the host's target.
		wu, ws, _ := watcherCPU(o)
		user, system = max(0, user-wu), max(0, system-ws)
	} else {
		var okU, okS bool
		user, okU = meanOf(o, observation.ProcessCPU, map[string]string{"mode": "user"})
		system, okS = meanOf(o, observation.ProcessCPU, map[string]string{"mode": "system"})
		ok = okU || okS
	}
	if !ok {
		return b
	}
	b.Source = BreakdownProc

	onCPU := (user + system) * window
	var sysClass Class // set when system time is counted whole, not split by a profile
	var systemSecs float64
	if p := goCPUProfile(o); p != nil && onCPU > 0 {
		shares, classes := cpuShares(p)
		for cat, share := range shares {
			for class, cs := range classes[cat] {
				add(cat, class, onCPU*share*cs)
			}
		}
	} else {
		add(OnCPUUser, ClassCPU, user*window)
		add(OnCPUSyscall, ClassCPU, system*window)
		sysClass, systemSecs = ClassCPU, system*window
	}

	psi := observation.ProcessPSI
	if host {
		psi = observation.HostPSI
	}
	if host {
		if some, ok := meanOf(o, psi, map[string]string{"resource": "cpu", "kind": "some"}); ok {
			add(WaitRunQueue, ClassCPU, some*window)
		}
	}
	// The process's own sampled waits, when there are any, are better than
	// its delay accounting and its cgroup's pressure: they are every wait,
	// told apart, and only its own.
	var sampled bool
	runDelay := map[Class]float64{ClassCPU: 1} // the run delay's parts, by class
	if p, goProc := threadStateProfile(o); p != nil && !host {
		w := threadStateWaits(p, goProc)
		for cat, v := range w.seconds {
			b.Seconds[cat] += v
		}
		for c, v := range w.byClass {
			b.ByClass[c] += v
		}
		sampled, b.ThreadStates = true, true
		runDelay = runDelayShares(o, w)
		if sysClass == ClassCPU {
			// What the counters say was surely spent first, then the
			// rest in the sleeps' proportions: a Go program's sleeps
			// are nearly all its netpoller's, which would take a file
			// writer's kernel time for its sockets' as soon as a
			// metrics scrape carried a byte.
			systemSecs = chargeByCounters(b, systemSecs, o, window)
			// An event loop's wakeups serve its sockets when its TCP
			// connections carried data in the window (a Go program's
			// netpoller sending and receiving), else nothing we can tell.
			to := ClassCPU
			if tcpCarried(o) {
				to = ClassNetwork
			}
			w.calls[to] += w.calls[callPoll]
			delete(w.calls, callPoll)
			systemSecs = chargeSystemTime(b, systemSecs, w.calls)
		}
	} else if sysClass == ClassCPU && !host {
		systemSecs = chargeByCounters(b, systemSecs, o, window)
	}
	if d, ok := meanOf(o, observation.ProcessRunDelay, nil); ok && !host {
		// In order, none included: sums come out the same every run, and
		// the waits that followed a poll or a timer stay in the breakdown.
		for _, c := range append(Classes, ClassNone) {
			add(WaitRunQueue, c, runDelay[c]*d*window)
		}
	}
	// PSI is the cgroup's (or the host's), not the process's own: count it
	// only for a target that did the kind of work that stalls on it.
	didIO := host
	if n, ok := meanOf(o, observation.ProcessSyscalls, nil); ok && n > 0 {
		didIO = true
	}
	// The process's own block I/O wait, where the kernel keeps delay
	// accounting (a host's process split out of its /proc scans), is better
	// than its cgroup's pressure.
	if d, ok := meanOf(o, observation.ProcessBlkioDelay, nil); ok && !host && !sampled {
		add(WaitDisk, ClassIO, d*window)
		didIO = false
	}
	if didIO {
		if some, ok := meanOf(o, psi, map[string]string{"resource": "io", "kind": "some"}); ok {
			if !sampled {
				add(WaitDisk, ClassIO, some*window)
			}
			// With I/O stalling, the kernel time of a target that does
			// I/O is mostly the storage stack's, as eBPF shows it to be
			// (fsync, O_DIRECT): count it towards io, as BreakdownOf would.
			if some >= th.PSISome && sysClass == ClassCPU && systemSecs > 0 {
				b.ByClass[ClassCPU] -= systemSecs
				b.ByClass[ClassIO] += systemSecs
			}
		}
	}
	if some, ok := meanOf(o, psi, map[string]string{"resource": "memory", "kind": "some"}); ok && !sampled {
		add(WaitFault, ClassMemory, some*window)
	}
	return b
}

// sumMeans adds the means of host.cpu{cpu=all} over the modes.
func sumMeans(o *observation.Observation, name observation.SeriesName, modes ...string) (float64, bool) {
	var sum float64
	var any bool
	for _, m := range modes {
		if v, ok := meanOf(o, name, map[string]string{"cpu": "all", "mode": m}); ok {
			sum, any = sum+v, true
		}
	}
	return sum, any
}

// goCPUProfile is a CPU profile from the Go runtime (a pprof endpoint or
// a push), nil when there is none.
func goCPUProfile(o *observation.Observation) *profile.Profile {
	for _, p := range o.ProfilesOf(observation.KindCPU) {
		if p.Source != observation.SourceEBPF && p.Profile != nil && sampleIndex(p.Profile, "cpu") >= 0 {
			return p.Profile
		}
	}
	return nil
}

// cpuShares splits a CPU profile's time by category, and each category by
// the class it counts towards.
func cpuShares(p *profile.Profile) (map[string]float64, map[string]map[Class]float64) {
	idx := sampleIndex(p, "cpu")
	byCat := map[string]float64{}
	byClass := map[string]map[Class]float64{}
	var total float64
	for _, s := range p.Sample {
		v := nanos(s, idx)
		cat := classifyOnCPU(s)
		byCat[cat] += v
		if byClass[cat] == nil {
			byClass[cat] = map[Class]float64{}
		}
		byClass[cat][onCPUClass(cat, frames(s))] += v
		total += v
	}
	if total == 0 {
		return nil, nil
	}
	for cat, v := range byCat {
		if v == 0 {
			delete(byCat, cat)
			continue
		}
		for c := range byClass[cat] {
			byClass[cat][c] /= v
		}
		byCat[cat] = v / total
	}
	return byCat, byClass
}

// tcpCarried tells a process whose TCP connections carried data in the
// window (process.tcp), either way.
func tcpCarried(o *observation.Observation) bool {
	for _, s := range o.SeriesNamed(observation.ProcessTCPBytes, nil) {
		for _, p := range s.Points {
			if p.Value > 0 {
				return true
			}
		}
	}
	return false
}

// chargeSystemTime splits a process's system time, counted as cpu, by the
// system calls its threads were sampled asleep in (calls: their time by
// the resource each call serves), and returns what stays cpu. A running
// thread says nothing, so the calls a process sleeps in stand for those
// it runs in: a thread that sleeps on a lock entered the kernel for it (a
// futex wait, and its waker's wake, meeting in the futex hash bucket's
// lock and the scheduler); one that sleeps in munmap or mprotect, on the
// mm lock, is churning its mappings, which is what its kernel time on a
// CPU goes to; the same for files and sockets. That is how eBPF's stacks
// charge such kernel time (onCPUClass), and what they show it to be for
// such processes (docs/analysis.md). The calls that serve none of these
// (sleeps, pipes; an event loop's waits unless the caller gave them to
// network) keep their share as cpu.
func chargeSystemTime(b Breakdown, systemSecs float64, calls map[Class]float64) float64 {
	var total float64
	for _, c := range slices.Sorted(maps.Keys(calls)) { // in order: sums come out the same every run
		total += calls[c]
	}
	if total <= 0 || systemSecs <= 0 {
		return systemSecs
	}
	left := systemSecs
	for _, c := range Classes { // in order: sums come out the same every run
		v := calls[c]
		if c == ClassCPU || v <= 0 {
			continue
		}
		moved := systemSecs * v / total
		b.ByClass[ClassCPU] -= moved
		b.ByClass[c] += moved
		left -= moved
	}
	return left
}

// Kernel time per unit of the work a process's counters record, on
// x86-64, in round figures: a minor fault (the fault's entry, finding or
// zeroing the page, mapping it) about a microsecond; a byte a TCP
// connection carried a quarter of a nanosecond (copied once, 4 GB/s, with
// the protocol's work on top: eBPF's stacks put a loopback download's
// receive path at about 0.7 ns a byte, a bulk sender's whole system time
// at 0.2); a byte fetched from storage or dirtied towards it the same
// (copied once between the page cache and the caller, with the file
// system's work on top). All err low, so that what they charge was
// surely spent.
const (
	minorFaultSecs  = 1e-6
	tcpByteSecs     = 0.25e-9
	storageByteSecs = 0.25e-9
)

// chargeByCounters charges the system time still counted as cpu
// (systemSecs), before the sampled sleeps split what is left (or instead,
// without them), by what the process's counters say its kernel surely
// did: page faults to memory, the bytes its TCP connections carried to
// network, the bytes it read from storage or dirtied towards it to io,
// each at its cost (minorFaultSecs, tcpByteSecs, storageByteSecs) and
// never more than there is. It returns what stays cpu. A thread that only
// ever runs (a download's, a mapping churner's) says nothing of its
// kernel time in its states; its counters do, in part. Not /proc/PID/io's read and write
// bytes (rchar, wchar): they count a socket's read(2) and write(2) but not
// its recv(2) and send(2), and cannot tell a socket from a pipe or
// /dev/null; its storage bytes (read_bytes, write_bytes) are files'
// only. Connections that open and close between two readings escape
// process.tcp: a sender of many short uploads is left to its sleeps.
func chargeByCounters(b Breakdown, systemSecs float64, o *observation.Observation, window float64) float64 {
	if systemSecs <= 0 || window <= 0 {
		return systemSecs
	}
	rate := func(name observation.SeriesName) float64 {
		v, _ := meanOf(o, name, nil) // summed over its series
		return max(0, v)
	}
	charge := []struct {
		class Class
		secs  float64
	}{
		{ClassMemory, rate(observation.ProcessMinorFaults) * minorFaultSecs * window},
		{ClassNetwork, rate(observation.ProcessTCPBytes) * tcpByteSecs * window},
		{ClassIO, rate(observation.ProcessStorageBytes) * storageByteSecs * window},
	}
	var explained float64
	for _, c := range charge {
		explained += c.secs
	}
	if explained <= 0 {
		return systemSecs
	}
	scale := min(1, systemSecs/explained)
	for _, c := range charge {
		b.ByClass[ClassCPU] -= c.secs * scale
		b.ByClass[c.class] += c.secs * scale
	}
	return systemSecs - explained*scale
}

// yieldSwitchRate is the rate of involuntary switches, per second of a
// process's time on a CPU, above which its threads give the CPU up
// themselves (sched_yield) rather than have it taken: the scheduler
// preempts a running thread once its slice is spent (the base slice,
// 0.75 ms times 1 + log2 of the CPUs up to 8: 0.75 to 3 ms), under about
// 1,300 times a CPU-second, and 10,000 is a tenth of a millisecond on a
// CPU between two. A thread it wakes can preempt sooner, so storms of
// wake-ups pass it too: lockRun keeps out threads that sleep on anything
// but locks.
// Measured on this project's VM (docs/analysis.md): programs that yield
// in their locks, 24,600 to 238,000; processes of one thread yielding,
// switching or waking each other, 7,600 to 195,000 (the thread count
// rules them out); threads waking each other on semaphores, 38,700
// (lockRun rules them out); everything else under 4,900.
const yieldSwitchRate = 10000

// runDelayShares splits a process's run delay by what each wait for a
// CPU followed, as eBPF's off-CPU stacks tell them apart: schedstat's
// delay counts every wait on a run queue, after a preemption or a yield
// (an involuntary switch) and after a wake-up from a sleep (a voluntary
// one), while eBPF's run-queue time is only the first kind, the second
// being part of the sleep it ends. So the voluntary switches' share of
// the delay counts as the sampled sleeps do, each class in its share of
// their time (idle parking left out: a thread pool's parked threads say
// nothing of what the working ones wake from), a lock's hand-off to
// contention, a socket's wake-up to network, an event loop's to none;
// the involuntary share counts as cpu, but when the switches come faster
// than preemptions can (yieldSwitchRate), those of threads that could be
// spinning on a lock (sampledWaits.lockRun) are yields to a thread
// holding what the yielder wants, contention (classifier.settle's rule,
// with stacks). Counts stand for times, an approximation that leans
// towards the sleeps: a preemption's wait is often longer than a
// wake-up's (docs/analysis.md).
func runDelayShares(o *observation.Observation, w sampledWaits) map[Class]float64 {
	vol, okV := meanOf(o, observation.ProcessCtxSwitches, map[string]string{"kind": "voluntary"})
	invol, okI := meanOf(o, observation.ProcessCtxSwitches, map[string]string{"kind": "involuntary"})
	if !okV || !okI || vol+invol <= 0 {
		return map[Class]float64{ClassCPU: 1}
	}
	out := map[Class]float64{}
	switched := invol / (vol + invol)
	// The time on a CPU the switches come in: schedstat's, summed over
	// the threads as the switches are, to the nanosecond (process.cpu
	// counts in ticks and keeps reaped children's time).
	onCPU, ok := meanOf(o, observation.ProcessOnCPU, nil)
	if !ok {
		onCPU, _ = meanOf(o, observation.ProcessCPU, nil)
	}
	var yields float64
	if onCPU > 0 && invol/onCPU >= yieldSwitchRate {
		yields = switched * w.lockRun
	}
	out[ClassContention] += yields
	out[ClassCPU] += switched - yields

	woken := 1 - switched
	var sleeps float64
	byClass := map[Class]float64{}
	for _, cat := range slices.Sorted(maps.Keys(w.seconds)) { // in order: sums come out the same every run
		if v := w.seconds[cat]; cat != WaitIdle && cat != WaitRunQueue && v > 0 {
			sleeps += v
			byClass[waitClass[cat]] += v
		}
	}
	if sleeps <= 0 {
		out[ClassCPU] += woken
		return out
	}
	for c, v := range byClass {
		out[c] += woken * v / sleeps
	}
	return out
}
