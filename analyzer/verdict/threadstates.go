package verdict

import (
	"cmp"
	"maps"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Without eBPF, a process's waits come from its thread states sampled in
// /proc (the threadstate profile, agent/collect.ThreadStates): a sleeping
// thread's state, the kernel function it sleeps in (wchan), its system
// call and the kind of descriptor the call names. They tell the waits
// apart as eBPF's stacks do, at a coarser grain: wchan is one function,
// not the stack, and a running thread says nothing (its time comes from
// the /proc counters, as without them).

// pollCalls wait on many descriptors at once: an event loop's wait.
var pollCalls = []string{"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"}

// sleepCalls sleep for a time.
var sleepCalls = []string{"nanosleep", "clock_nanosleep", "clock_nanosleep_time64"}

// futexCalls are the futex system call's names.
var futexCalls = []string{"futex", "futex_time64", "futex_waitv"}

// threadStateWait names why a sampled thread was off CPU, as classifyWait
// does from a stack; "" for a running or runnable thread. goProc says the
// process is a Go program, whose runtime parks its idle threads on
// futexes and in nanosleep itself and whose netpoller is an event loop's
// epoll.
func threadStateWait(state, wchan, call, fd string, goProc bool) string {
	at := []string{wchan}
	switch state {
	case "R", "":
		return ""
	case "I", "P":
		return WaitIdle
	case "D":
		switch {
		case call == "" && wchan != "":
			// In the kernel, uninterruptible, outside any system call:
			// a page fault waiting for I/O or for the mm lock.
			return WaitFault
		case has(at, diskWait...):
			return WaitDisk
		case isLockSleep(at):
			return WaitLock
		case isMemoryCall(call):
			// Asleep in mmap, munmap, mprotect... outside the disk: on
			// the mm lock (or a VMA's), which the process's other
			// memory calls and faults hold. wchan names the call's own
			// code (__vm_munmap, do_mprotect_pkey): the lock's slow path
			// is a scheduling function, which wchan skips.
			return WaitLock
		case hasExact([]string{call}, fileCalls...), fd == "file", isFlushCall(call):
			return WaitDisk
		}
		return WaitOther
	}
	switch {
	case isLockSleep(at):
		return WaitLock
	case fd == "socket", hasExact([]string{call}, socketCalls...), has(at, networkWait...):
		return WaitNetwork
	case hasExact([]string{call}, futexCalls...):
		if goProc {
			return WaitIdle
		}
		return WaitLock
	case hasExact([]string{call}, pollCalls...), has(at, pollWait...):
		return WaitPoll
	case hasExact([]string{call}, sleepCalls...), has(at, sleepWait...):
		if goProc {
			// The runtime's own: sysmon's and a spinning thread's
			// usleep (a goroutine's sleep is a timer in the netpoller),
			// idle as eBPF's stacks say (goIdle's runtime.usleep).
			return WaitIdle
		}
		return WaitSleep
	}
	return WaitOther
}

// threadStateProfile is the observation's threadstate profile, and
// whether its process is a Go program; nil when it has none.
func threadStateProfile(o *observation.Observation) (*profile.Profile, bool) {
	for _, p := range o.ProfilesOf(observation.KindThreadState) {
		if p.Profile != nil && sampleIndex(p.Profile, "thread_time") >= 0 {
			return p.Profile, p.Labels[observation.ProfileLabelGo] != ""
		}
	}
	return nil, false
}

// threadStateSample is one sample of a threadstate profile, read.
type threadStateSample struct {
	pid     int64
	tid     int64
	goProc  bool // its process is a Go program
	state   string
	call    string
	fd      string
	wchan   string
	lockSig bool // a futex wait on a lock word held with waiters
	seconds float64
}

// readThreadStates reads the samples; goProc is the profile's label,
// which each sample's own overrides when the profile has them (a process
// tree's: a shell's children may be Go programs, or a Go program's not).
func readThreadStates(p *profile.Profile, goProc bool) []threadStateSample {
	idx := sampleIndex(p, "thread_time")
	out := make([]threadStateSample, 0, len(p.Sample))
	perSample := false
	for _, s := range p.Sample {
		if len(s.Label[observation.ProfileLabelGo]) > 0 {
			perSample = true
			break
		}
	}
	for _, s := range p.Sample {
		one := func(k string) string {
			if v := s.Label[k]; len(v) == 1 {
				return v[0]
			}
			return ""
		}
		ts := threadStateSample{state: one("state"), call: one("syscall"), fd: one("fd"), seconds: nanos(s, idx), goProc: goProc}
		if perSample {
			ts.goProc = one(observation.ProfileLabelGo) != ""
		}
		if v := s.NumLabel["tid"]; len(v) == 1 {
			ts.tid = v[0]
		}
		if v := s.NumLabel["pid"]; len(v) == 1 {
			ts.pid = v[0]
		}
		if fns := frames(s); len(fns) > 0 {
			ts.wchan = fns[0]
		}
		// glibc's and Rust's mutexes (and the Go runtime's before 1.24)
		// sleep with FUTEX_WAIT expecting 2, "locked, with waiters"
		// (Drepper, Futexes Are Tricky): a lock, whatever the holder does.
		// Condition variables wait with FUTEX_WAIT_BITSET or on counters.
		ts.lockSig = one("futex") == "wait" && one("futex_val") == "2"
		out = append(out, ts)
	}
	return out
}

// sampledWaits is what a process's sampled thread states say.
type sampledWaits struct {
	// seconds are the waits by category, byClass the same by class.
	seconds map[string]float64
	byClass map[Class]float64
	// calls weigh the resources the system calls the threads slept in
	// serve (callClass; idle parking left out; ClassCPU for the calls
	// that serve none of them: poll, sleep, pipes), each thread's sleeps
	// by its time running, which stands for its share of the system time:
	// the shares chargeSystemTime splits that time in.
	calls map[Class]float64
	// lockRun is the part of the threads' time running (or runnable)
	// that was of threads that could be yielding to a lock's holder
	// (runDelayShares): in a process of several threads, not Go's (whose
	// runtime yields in its own scheduler), threads that never slept, not
	// even parked idle, or slept on locks, each in its sleeps' lock
	// share. A thread that sleeps on a pipe, an eventfd or a socket and is
	// switched out fast is being preempted by the threads it wakes, not
	// yielding.
	lockRun float64
}

// callClass is the resource a sampled sleep's system call serves, as
// eBPF charges a call's time on CPU (onCPUClass): memory management and
// faults to memory, lock waits (futexes held as locks, the kernel's
// locks) to contention, files to io, sockets to network; an event loop's
// wait (epoll, poll, a Go program's netpoller) is callPoll, which the
// process's connections decide (chargeSystemTime's caller).
func callClass(cat, call string) Class {
	switch {
	case isMemoryCall(call), cat == WaitFault:
		return ClassMemory
	case cat == WaitLock:
		return ClassContention
	case cat == WaitDisk:
		return ClassIO
	case cat == WaitNetwork:
		return ClassNetwork
	case cat == WaitPoll:
		return callPoll
	}
	return ClassCPU
}

// callPoll stands in calls for an event loop's waits: the calls it wakes
// to make are its descriptors', sockets when its connections carry data.
const callPoll Class = "poll"

// threadStateWaits splits the sampled waits by category and class, as
// breakdownOf splits eBPF's off-CPU time: a futex wait is a lock wait as
// far as parking's per-thread rule allows (see parking), all of it when
// the lock word says a mutex.
func threadStateWaits(p *profile.Profile, goProc bool) sampledWaits {
	samples := readThreadStates(p, goProc)
	// A thread is its process's: the parking rule counts the threads of
	// one process (as parking does eBPF's), and a process tree's (a shell
	// and its children) are sampled together.
	type thread struct{ pid, tid int64 }
	type counts struct {
		lock, activity, run, sleeps float64
		idle                        float64           // its parking
		calls                       map[Class]float64 // its sleeps by callClass
		goProc                      bool
	}
	threads := map[thread]*counts{}
	perPID := map[int64]int{}
	cats := make([]string, len(samples))
	for i, s := range samples {
		t := thread{s.pid, s.tid}
		c := threads[t]
		if c == nil {
			c = &counts{goProc: s.goProc}
			threads[t] = c
			perPID[s.pid]++
		}
		cats[i] = threadStateWait(s.state, s.wchan, s.call, s.fd, s.goProc)
		switch cats[i] {
		case "", WaitDisk, WaitNetwork, WaitFault:
			c.activity += s.seconds // running, or blocked on a resource
		case WaitLock:
			if !s.lockSig {
				c.lock += s.seconds
			}
		}
		if cats[i] == "" {
			c.run += s.seconds
		}
	}
	w := sampledWaits{seconds: map[string]float64{}, byClass: map[Class]float64{}, calls: map[Class]float64{}}
	for i, s := range samples {
		cat, v := cats[i], s.seconds
		if cat == "" || v <= 0 {
			continue
		}
		t := thread{s.pid, s.tid}
		if cat == WaitLock && hasExact([]string{s.call}, futexCalls...) && !s.lockSig {
			c := threads[t]
			sh := contendedShare(c.lock, c.activity, perPID[s.pid])
			w.seconds[WaitIdle] += (1 - sh) * v
			w.byClass[ClassNone] += (1 - sh) * v
			c.idle += (1 - sh) * v
			v *= sh
		}
		w.seconds[cat] += v
		w.byClass[waitClass[cat]] += v
		if cat == WaitIdle {
			threads[t].idle += v
		}
		if c := threads[t]; cat != WaitIdle && v > 0 {
			if c.calls == nil {
				c.calls = map[Class]float64{}
			}
			c.sleeps += v
			c.calls[callClass(cat, s.call)] += v
		}
	}
	// Each thread's sleeps speak for the kernel time it spent on a CPU,
	// which its time running stands for: a listener that only ever waits
	// in accept says nothing of the workers' kernel time. A thread that
	// runs and never sleeps keeps its share as cpu. A Go program's threads
	// are one: its scheduler runs any goroutine on any thread, so the
	// goroutine that writes to a socket and parks in the netpoller when
	// the socket is full runs on whichever thread is free, and the thread
	// that waits in epoll_pwait is whichever found nothing to run.
	// Maps are walked in order, so that sums come out the same every run.
	byThread := func(a, b thread) int { return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.tid, b.tid)) }
	merged := map[thread]*counts{}
	for _, t := range slices.SortedFunc(maps.Keys(threads), byThread) {
		c := threads[t]
		if c.goProc {
			t.tid = 0
		}
		m := merged[t]
		if m == nil {
			m = &counts{calls: map[Class]float64{}}
			merged[t] = m
		}
		m.run += c.run
		m.sleeps += c.sleeps
		for _, class := range slices.Sorted(maps.Keys(c.calls)) {
			m.calls[class] += c.calls[class]
		}
	}
	mergedOrder := slices.SortedFunc(maps.Keys(merged), byThread)
	var ran, lockRun float64
	for _, t := range mergedOrder {
		ran += merged[t].run
	}
	for _, t := range slices.SortedFunc(maps.Keys(threads), byThread) {
		switch c := threads[t]; {
		case c.goProc || perPID[t.pid] < 2:
		case c.sleeps == 0 && c.idle == 0:
			lockRun += c.run // never slept: spinning, or yielding
		case c.sleeps > 0:
			lockRun += c.run * c.calls[ClassContention] / c.sleeps
		}
	}
	if ran > 0 {
		w.lockRun = lockRun / ran
	}
	for _, t := range mergedOrder {
		c := merged[t]
		if c.sleeps == 0 {
			w.calls[ClassCPU] += c.run
		}
		for _, class := range slices.Sorted(maps.Keys(c.calls)) {
			v := c.calls[class]
			if ran == 0 {
				// No thread seen running (a process that ran under a
				// twentieth of the time): the sleeps as they are.
				w.calls[class] += v
			} else {
				w.calls[class] += c.run * v / c.sleeps
			}
		}
	}
	return w
}
