package verdict

import (
	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Not every futex wait is lock contention: thread pools park their idle
// workers on futexes too (the Go runtime's idle Ms, Rust's and the JVM's
// thread parking, glibc condition variables of idle workers). Two rules
// tell them apart, per process, from what the eBPF profiles show:
//
//   - Go: threads of a Go program block on futexes only in the runtime
//     (parking an idle M, sysmon, GC workers waiting); goroutines waiting
//     on a sync.Mutex park in the Go scheduler, not on a futex. So in a Go
//     process a futex wait is parking unless its stack shows a C lock
//     (pthread_mutex_lock and friends, through cgo). A process is Go when
//     any of its stacks has a runtime.* frame.
//   - Everyone: a waiter waits for a holder, and a holder is doing work:
//     running, or blocked on a disk or a socket. With T threads, at most
//     T-1 wait on the one holder, so lock waits beyond (T-1) times the
//     process's activity have nobody to wait for: they are idle parking.
//
// parking holds, per process, the part of its futex waits that can be
// lock contention (1: all of it).
type parking map[int64]float64

// parkingOf measures every process of o's eBPF profiles.
func parkingOf(o *observation.Observation) parking {
	type proc struct {
		goRuntime      bool
		lock, activity float64
		threads        map[int64]bool
	}
	procs := map[int64]*proc{}
	get := func(s *profile.Sample) *proc {
		pid := samplePID(s)
		p := procs[pid]
		if p == nil {
			p = &proc{threads: map[int64]bool{}}
			procs[pid] = p
		}
		if v := s.NumLabel["tid"]; len(v) == 1 {
			p.threads[v[0]] = true
		}
		return p
	}
	for _, prof := range o.Profiles {
		if prof.Source != "ebpf" || prof.Profile == nil {
			continue
		}
		switch prof.Kind {
		case observation.KindCPU:
			idx := sampleIndex(prof.Profile, "cpu")
			for _, s := range prof.Profile.Sample {
				p := get(s)
				fns := frames(s)
				p.goRuntime = p.goRuntime || has(fns, "runtime.")
				p.activity += nanos(s, idx)
			}
		case observation.KindOffCPU:
			idx := sampleIndex(prof.Profile, "off_cpu")
			for _, s := range prof.Profile.Sample {
				p := get(s)
				fns := frames(s)
				p.goRuntime = p.goRuntime || has(fns, "runtime.")
				switch classifyWait(sampleState(s), fns) {
				case WaitLock:
					p.lock += nanos(s, idx)
				case WaitDisk, WaitNetwork, WaitFault:
					p.activity += nanos(s, idx)
				}
			}
		}
	}
	out := parking{}
	for pid, p := range procs {
		share := 1.0
		if bound := float64(len(p.threads)-1) * p.activity; p.lock > 0 && bound < p.lock {
			share = bound / p.lock
		}
		if p.goRuntime {
			share = -1 // decided per stack: see lockShare
		}
		out[pid] = share
	}
	return out
}

// lockShare is the part of a futex wait (a sample classified WaitLock)
// that counts as lock contention.
func (pk parking) lockShare(s *profile.Sample, fns []string) float64 {
	share, ok := pk[samplePID(s)]
	switch {
	case !ok:
		return 1
	case share < 0: // a Go process
		if has(fns, "__lll_lock_wait", "__pthread_mutex_lock", "pthread_mutex_lock", "pthread_rwlock_", "__pthread_rwlock_") {
			return 1
		}
		return 0
	}
	return share
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
