package verdict

import (
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// A sample taken at a system call's boundary belongs to the call, though
// its stack does not name it. The kernel runs a call's way in and out
// with interrupts off; a timer interrupt (the cpu-clock event perfhound
// samples with where there is no PMU, and every timer tick) that falls
// due there is delivered the moment they are on again: at the first user
// instruction after the call returns, or in the entry and exit code
// (do_syscall_64, exit_to_user_mode_loop) after the call's own frame is
// gone. A call made often enough (a futex storm, a loop of small writes)
// leaves much of its time there: stress-ng's futex stressor left 14% of
// its CPU samples at the instruction after its `syscall` returns, which a
// stack cannot tell from user code, and a third in the exit path. The
// call is told by where it was made: the user stack of the samples taken
// inside it, at the same return address, which names it
// (__x64_sys_futex).

// callShare is a part of a sample charged to the system call op, counted
// towards class as a sample inside the call would be (onCPUClass).
type callShare struct {
	op    string
	class Class
	share float64
}

// callSites are an observation's system calls by where they were made:
// the time of the eBPF samples inside a named call, by op and class,
// keyed by their process and whole user stack, and by their process and
// innermost user address alone (for the samples whose walk of the user
// stack stopped sooner or went further). The on-CPU samples say what a
// call's time on a CPU went to; a call seen only waiting (a read that
// blocked) is told by the off-CPU ones. Addresses are keyed by their
// object's path, not their pprof mapping, so that one profile's samples
// find another's.
type callSites struct {
	seed    maphash.Seed
	on, off sites
}

// sites are the calls made from each place, as shares of their time,
// in (op, class) order.
type sites struct {
	byStack map[uint64][]callShare
	byPC    map[pcKey][]callShare
}

// pcKey is a user address in its object, in a process.
type pcKey struct {
	pid  int64
	file string
	addr uint64
}

// callSitesOf gathers the named calls of o's eBPF profiles, classifying
// the on-CPU stacks with cl.
func callSitesOf(o *observation.Observation, cl *classifier) callSites {
	cs := callSites{seed: maphash.MakeSeed()}
	for _, p := range o.Profiles {
		if p.Source != observation.SourceEBPF || p.Profile == nil {
			continue
		}
		var idx int
		var into *sites
		switch p.Kind {
		case observation.KindCPU:
			idx, into = sampleIndex(p.Profile, "cpu"), &cs.on
		case observation.KindOffCPU:
			idx, into = sampleIndex(p.Profile, "off_cpu"), &cs.off
		default:
			continue
		}
		byStack, byPC := map[uint64]map[callShare]float64{}, map[pcKey]map[callShare]float64{}
		for _, s := range p.Profile.Sample {
			if !inSyscall(s) {
				continue
			}
			pc, stack, ok := cs.userKeys(s)
			if !ok {
				continue
			}
			var call callShare
			if p.Kind == observation.KindCPU {
				if sc := cl.of(s); sc.cat == OnCPUSyscall {
					call = callShare{op: sc.op, class: sc.class}
				}
			} else if sc := cl.ofWait(s); sc.op != "" {
				call = callShare{op: sc.op, class: sc.class}
			}
			if call.op == "" || call.op == pageFault {
				continue
			}
			v := nanos(s, idx)
			addCall(byStack, stack, call, v)
			addCall(byPC, pc, call, v)
		}
		into.byStack, into.byPC = shares(byStack), shares(byPC)
	}
	return cs
}

func addCall[K comparable](m map[K]map[callShare]float64, key K, call callShare, v float64) {
	if m[key] == nil {
		m[key] = map[callShare]float64{}
	}
	m[key][call] += v
}

// shares turns each place's time by call into shares of it, in (op,
// class) order, so that sums over them come out the same every run.
func shares[K comparable](m map[K]map[callShare]float64) map[K][]callShare {
	out := make(map[K][]callShare, len(m))
	for key, calls := range m {
		list := make([]callShare, 0, len(calls))
		for c, v := range calls {
			list = append(list, callShare{op: c.op, class: c.class, share: v})
		}
		slices.SortFunc(list, func(a, b callShare) int {
			return cmp.Or(cmp.Compare(a.op, b.op), cmp.Compare(a.class, b.class))
		})
		var total float64
		for _, c := range list {
			total += c.share
		}
		for i := range list {
			list[i].share /= total
		}
		out[key] = list
	}
	return out
}

// inSyscall tells a sample taken in the kernel's system call entry (its
// kernel frames hold entry_SYSCALL_64 or do_syscall_64): the test that
// leaves out most samples before their frames are gathered.
func inSyscall(s *profile.Sample) bool {
	for _, l := range s.Location {
		if !IsKernel(l) {
			return false // kernel frames come first
		}
		for _, ln := range l.Line {
			if ln.Function == nil {
				continue
			}
			// syscallEntry's names, compared whole: this runs for every
			// kernel frame of every sample.
			switch ln.Function.Name {
			case "do_syscall_64", "entry_SYSCALL_64", "entry_SYSCALL_64_after_hwframe":
				return true
			}
		}
	}
	return false
}

// locationsHash is a hash of a sample's locations, by identity.
func locationsHash(seed maphash.Seed, s *profile.Sample) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, l := range s.Location {
		maphash.WriteComparable(&h, l)
	}
	return h.Sum64()
}

// innermostUser is a sample's innermost user address, in its process;
// ok is false for a stack without user frames, or whose innermost one is
// in no mapping (the one [unknown] frame of a process never seen alive:
// every such process's would be one place).
func innermostUser(s *profile.Sample) (pcKey, bool) {
	for _, l := range s.Location {
		if IsKernel(l) {
			continue
		}
		if l.Mapping == nil {
			return pcKey{}, false
		}
		return pcKey{samplePID(s), l.Mapping.File, l.Address}, true
	}
	return pcKey{}, false
}

// userKeys are the keys of a sample's user stack: its innermost address
// and a hash of all of them, in its process; ok as innermostUser's.
func (cs callSites) userKeys(s *profile.Sample) (pc pcKey, stack uint64, ok bool) {
	if pc, ok = innermostUser(s); !ok {
		return pcKey{}, 0, false
	}
	var h maphash.Hash
	h.SetSeed(cs.seed)
	maphash.WriteComparable(&h, pc.pid)
	for _, l := range s.Location {
		if IsKernel(l) {
			continue
		}
		maphash.WriteComparable(&h, l.Address)
		if l.Mapping != nil {
			h.WriteString(l.Mapping.File)
		}
	}
	return pc, h.Sum64(), true
}

// of is how an on-CPU sample at a call's boundary is charged: as the
// calls made from where it is (at). It is nil for a sample inside a
// named call, in a page fault, in Go's collector or an allocator, one
// whose kernel frames say what they served (reclaim on the way out, a
// softirq's network receive, a file's release, a kernel lock: that
// work's, whatever the call), or at an address no call returned to.
func (cs callSites) of(s *profile.Sample, sc stackClass) []callShare {
	switch sc.cat {
	case OnCPUUser, OnCPUKernel:
	case OnCPUSyscall:
		if sc.op != "" {
			return nil
		}
	default:
		return nil
	}
	if len(s.Location) > 0 && IsKernel(s.Location[0]) && sc.class != ClassCPU {
		return nil
	}
	return cs.at(s)
}

// at is the shares of the calls made from a sample's place, by their
// time: from its whole user stack, on a CPU, else waiting; else from its
// innermost address, the same way. Nil when none was.
func (cs callSites) at(s *profile.Sample) []callShare {
	// Most samples are at no call's return address: tell them by it
	// before hashing their whole stack.
	pc, ok := innermostUser(s)
	if !ok || cs.on.byPC[pc] == nil && cs.off.byPC[pc] == nil {
		return nil
	}
	_, stack, _ := cs.userKeys(s)
	for _, calls := range [][]callShare{cs.on.byStack[stack], cs.off.byStack[stack], cs.on.byPC[pc], cs.off.byPC[pc]} {
		if calls != nil {
			return calls
		}
	}
	return nil
}

// lockHandoff is the part of a wait for a CPU (an off-CPU sample
// classified WaitRunQueue) that a lock's hand-off caused, beyond the
// lock code's own (waitClassOf): a thread preempted in a futex call
// outside the Go runtime, or on its way out of one (the waker of a
// futex, preempted by the thread it woke, is the commonest), in the part
// of its futex waits that can be contention (parking.handoffShare). A
// lock of the program's own on a futex (Rust's std, a hand-rolled one
// called through syscall(2)) has no function of the C library's to name
// it.
//
// A file lock's call (flock, fcntl's lock commands) on the way out is
// the lock's whole: nobody parks idle on a file lock.
func (cs callSites) lockHandoff(s *profile.Sample, sc stackClass, pk parking) float64 {
	var futex, file float64
	add := func(op string, class Class, share float64) {
		switch {
		case class != ClassContention:
		case hasExact([]string{op}, futexCalls...):
			futex += share
		case hasExact([]string{op}, fileLockCalls...):
			file += share
		}
	}
	if sc.op != "" {
		add(sc.op, sc.class, 1)
	} else {
		for _, c := range cs.at(s) {
			add(c.op, c.class, c.share)
		}
	}
	if futex > 0 {
		futex *= pk.handoffShare(s)
	}
	return futex + file
}
