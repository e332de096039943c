package verdict

import (
	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Not every futex wait is lock contention: thread pools park their idle
// workers on futexes too (the Go runtime's idle Ms, Rust's and the JVM's
// thread parking, glibc condition variables of idle workers). Two rules
// tell them apart, from what the eBPF profiles show:
//
//   - Go: threads of a Go program block on futexes in the runtime: idle Ms
//     parking, sysmon, GC workers waiting (goroutines waiting on a
//     sync.Mutex park in the Go scheduler, not on a futex). Of its futex
//     waits, only those under the runtime's own lock (runtime.lock2,
//     contended when goroutines crowd a channel) or a C lock (pthread
//     mutexes, through cgo) are lock contention. A process is Go when any
//     of its stacks has a runtime.* frame.
//   - A stack that shows a mutex (pthread_mutex_lock, __lll_lock_wait: C
//     libraries' symbols are needed) is contention, whatever the holder
//     does under the lock.
//   - Everyone else, per thread: a thread contending for a lock gets it in
//     turn and works while it holds it, so it waits at most T-1 times as
//     long as it works (T threads in the process, all waiting for the one
//     holder). A thread's futex waits beyond (T-1) times its own activity
//     (on a CPU, or blocked on a disk, a socket or a fault) are idle
//     parking: the worker of a pool with nothing to do, woken by timeouts
//     or rarely. A thread blocked on a lock the whole window, doing
//     nothing, counts as parked: the rule cannot tell it from an idle
//     worker.
//
// parking holds, per thread, the part of its futex waits that can be lock
// contention (1: all of it); a Go process is marked by its pid with tid 0.
type parking map[thread]float64

type thread struct{ pid, tid int64 }

// goProcess marks a Go process in parking.
const goProcess = -1

// wholeProcess is the tid under which parking holds a process's
// contended share of all its threads' futex waits.
const wholeProcess = -2

// threadCount is the tid under which parking holds how many of a
// process's threads the eBPF profiles sampled.
const threadCount = -3

// fileLockSleeps is the tid (of pid 0) under which parking marks a window
// in which some thread slept in the file locks' code: they were contended,
// by whichever processes (file locks are shared between them).
const fileLockSleeps = -4

// parkingOf measures every thread of o's eBPF profiles.
func parkingOf(o *observation.Observation) parking {
	type counts struct{ lock, activity float64 }
	threads := map[thread]*counts{}
	perPID := map[int64]int{}
	goPIDs := map[int64]bool{}
	var fileLocks bool
	get := func(s *profile.Sample) *counts {
		t := thread{pid: samplePID(s)}
		if v := s.NumLabel["tid"]; len(v) == 1 {
			t.tid = v[0]
		}
		c := threads[t]
		if c == nil {
			c = &counts{}
			threads[t] = c
			perPID[t.pid]++
		}
		return c
	}
	for _, prof := range o.Profiles {
		if prof.Source != observation.SourceEBPF || prof.Profile == nil {
			continue
		}
		switch prof.Kind {
		case observation.KindCPU:
			idx := sampleIndex(prof.Profile, "cpu")
			for _, s := range prof.Profile.Sample {
				c := get(s)
				if inGoRuntime(frames(s)) {
					goPIDs[samplePID(s)] = true
				}
				c.activity += nanos(s, idx)
			}
		case observation.KindOffCPU:
			idx := sampleIndex(prof.Profile, "off_cpu")
			for _, s := range prof.Profile.Sample {
				c := get(s)
				fns := frames(s)
				if inGoRuntime(fns) {
					goPIDs[samplePID(s)] = true
				}
				st := sampleState(s)
				fileLocks = fileLocks || (st == "S" || st == "D") && has(fns, fileLockCode...)
				switch classifyWait(st, fns) {
				case WaitLock:
					if isLockSleep(fns) {
						// On a kernel or file lock: contention
						// whatever the holder does (lockShare), and
						// no futex wait to bound.
						c.activity += nanos(s, idx)
					} else {
						c.lock += nanos(s, idx)
					}
				case WaitDisk, WaitNetwork, WaitFault:
					c.activity += nanos(s, idx)
				}
			}
		}
	}
	out := parking{}
	type sums struct{ contended, lock float64 }
	procs := map[int64]*sums{}
	for t, c := range threads {
		if c.lock <= 0 {
			continue // never waited on a futex: see handoffShare
		}
		share := contendedShare(c.lock, c.activity, perPID[t.pid])
		out[t] = share
		p := procs[t.pid]
		if p == nil {
			p = &sums{}
			procs[t.pid] = p
		}
		p.contended += share * c.lock
		p.lock += c.lock
	}
	for pid, p := range procs {
		out[thread{pid: pid, tid: wholeProcess}] = p.contended / p.lock
	}
	for pid := range goPIDs {
		out[thread{pid: pid}] = goProcess
	}
	for pid, n := range perPID {
		out[thread{pid: pid, tid: threadCount}] = float64(n)
	}
	if fileLocks {
		out[thread{tid: fileLockSleeps}] = 1
	}
	return out
}

// threads is how many of process pid's threads were sampled.
func (pk parking) threads(pid int64) int { return int(pk[thread{pid: pid, tid: threadCount}]) }

// fileLocksWaited tells a window in which some thread slept in the file
// locks' code (classifier.settle).
func (pk parking) fileLocksWaited() bool { return pk[thread{tid: fileLockSleeps}] == 1 }

// contendedShare is the part of a thread's futex waits (lock seconds)
// that can be contention, one of threads in its process that was active
// (on a CPU or blocked on a resource) for activity seconds: at most
// threads-1 times its activity, the rest idle parking.
func contendedShare(lock, activity float64, threads int) float64 {
	if bound := float64(threads-1) * activity; lock > 0 && bound < lock {
		return bound / lock
	}
	return 1
}

// lockShare is the part of a futex wait (a sample classified WaitLock)
// that counts as lock contention.
func (pk parking) lockShare(s *profile.Sample, fns []string) float64 {
	// A wait the stack shows to be on a mutex is contention whatever the
	// holder does meanwhile (it may sleep or call out under the lock):
	// with the C library's symbols (libc6-dbg) the stack says so, and a
	// sleep on one of the kernel's own locks always does.
	if has(fns, cLockFrames...) || isLockSleep(fns) {
		return 1
	}
	pid := samplePID(s)
	if pk[thread{pid: pid}] == goProcess {
		if hasExact(fns, goRuntimeLocks...) {
			return 1
		}
		return 0
	}
	t := thread{pid: pid}
	if v := s.NumLabel["tid"]; len(v) == 1 {
		t.tid = v[0]
	}
	if share, ok := pk[t]; ok {
		return share
	}
	return 1
}

// samplePID is an eBPF sample's process (its numeric label "pid"), 0 when
// it has none.
func samplePID(s *profile.Sample) int64 {
	if v := s.NumLabel["pid"]; len(v) == 1 {
		return v[0]
	}
	return 0
}

// sampleState is an off-CPU sample's thread state ("S", "D", "R"...).
func sampleState(s *profile.Sample) string {
	if v := s.Label["state"]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// handoffShare is the part of a thread's futex hand-offs (a wait for a
// CPU in or leaving a futex call: callSites.lockHandoff) that can be a
// lock's: its own futex waits' contended share; for a thread that never
// waited on one (the producer that wakes a pool's workers), its
// process's, which is none when the process's futex waits were all idle
// parking or there were none.
func (pk parking) handoffShare(s *profile.Sample) float64 {
	pid := samplePID(s)
	t := thread{pid: pid}
	if v := s.NumLabel["tid"]; len(v) == 1 {
		t.tid = v[0]
	}
	share, ok := pk[t]
	if !ok {
		share = pk[thread{pid: pid, tid: wholeProcess}]
	}
	return max(0, share) // not goProcess's mark
}
