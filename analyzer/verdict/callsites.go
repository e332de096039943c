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
// leaves much of its time there: stress-ng's futex stressor left 35% of
// its CPU samples at the instruction after its `syscall`, which a stack
// cannot tell from user code. The call is told by where it was made:
// the user stack of the samples taken inside it, at the same return
// address, which names it (__x64_sys_futex).

// callShare is a part of a sample charged to the system call op, counted
// towards class as a sample inside the call would be (onCPUClass).
type callShare struct {
	op    string
	class Class
	share float64
}

// callSites are an observation's system calls by where they were made:
// the time of the eBPF samples inside a named call, by op and class,
// keyed by their whole user stack and by its innermost address alone
// (for the samples whose walk of the user stack stopped sooner or went
// further). The on-CPU samples say what a call's time on a CPU went to;
// a call seen only waiting (a read that blocked) is told by the off-CPU
// ones. Addresses are keyed by their object's path, not its pprof
// mapping, so that one profile's samples find another's.
type callSites struct {
	seed    maphash.Seed
	on, off sites
}

// sites are calls by their user stack's hash and innermost address
// (callShare.share unused in the keys).
type sites struct {
	byStack map[uint64]map[callShare]float64
	byPC    map[pcKey]map[callShare]float64
}

// pcKey is a user address in its object.
type pcKey struct {
	file string
	addr uint64
}

// callSitesOf gathers the named calls of o's eBPF profiles.
func callSitesOf(o *observation.Observation) callSites {
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
		// Samples of one stack (many threads', many windows') name the
		// same call: classify each stack once.
		calls := map[uint64]callShare{}
		for _, s := range p.Profile.Sample {
			if !inSyscall(s) {
				continue
			}
			pc, stack, ok := cs.userKeys(s)
			if !ok {
				continue
			}
			whole := locationsHash(cs.seed, s)
			call, seen := calls[whole]
			if !seen {
				fns := frames(s)
				if op := syscallOf(fns); op != "" && op != pageFault {
					call = callShare{op: op, class: onCPUClass(OnCPUSyscall, fns)}
				}
				calls[whole] = call
			}
			if call.op != "" {
				into.add(pc, stack, call, nanos(s, idx))
			}
		}
	}
	return cs
}

func (st *sites) add(pc pcKey, stack uint64, k callShare, v float64) {
	if st.byStack == nil {
		st.byStack, st.byPC = map[uint64]map[callShare]float64{}, map[pcKey]map[callShare]float64{}
	}
	if st.byStack[stack] == nil {
		st.byStack[stack] = map[callShare]float64{}
	}
	if st.byPC[pc] == nil {
		st.byPC[pc] = map[callShare]float64{}
	}
	st.byStack[stack][k] += v
	st.byPC[pc][k] += v
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
			if ln.Function != nil && has([]string{ln.Function.Name}, syscallEntry...) {
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

// innermostUser is a sample's innermost user address.
func innermostUser(s *profile.Sample) (pcKey, bool) {
	for _, l := range s.Location {
		if IsKernel(l) {
			continue
		}
		file := ""
		if l.Mapping != nil {
			file = l.Mapping.File
		}
		return pcKey{file, l.Address}, true
	}
	return pcKey{}, false
}

// userKeys are the keys of a sample's user stack: its innermost address
// and a hash of all of them; ok is false for a stack with no user frame.
func (cs callSites) userKeys(s *profile.Sample) (pc pcKey, stack uint64, ok bool) {
	var h maphash.Hash
	h.SetSeed(cs.seed)
	for _, l := range s.Location {
		if IsKernel(l) {
			continue
		}
		file := ""
		if l.Mapping != nil {
			file = l.Mapping.File
		}
		if !ok {
			pc, ok = pcKey{file, l.Address}, true
		}
		var b [8]byte
		for i := range b {
			b[i] = byte(l.Address >> (8 * i))
		}
		h.Write(b[:])
		h.WriteString(file)
	}
	return pc, h.Sum64(), ok
}

// of is how an on-CPU sample at a call's boundary is charged: as the
// calls made from where it is (at). It is nil for a sample inside a
// named call, in a page fault, in Go's collector or an allocator
// (decided by their frames), or at an address no call returned to.
func (cs callSites) of(s *profile.Sample, category string, fns []string) []callShare {
	switch category {
	case OnCPUUser, OnCPUKernel:
	case OnCPUSyscall:
		if syscallOf(fns) != "" {
			return nil
		}
	default:
		return nil
	}
	return cs.at(s)
}

// at is the shares of the calls made from a sample's user stack (or,
// when none was seen from the whole stack, from its innermost address),
// by their time on a CPU, else by their time waiting; nil when none was.
func (cs callSites) at(s *profile.Sample) []callShare {
	// Most samples are at no call's return address: tell them by it
	// before hashing their whole stack.
	pc, ok := innermostUser(s)
	if !ok || cs.on.byPC[pc] == nil && cs.off.byPC[pc] == nil {
		return nil
	}
	_, stack, _ := cs.userKeys(s)
	var calls map[callShare]float64
	for _, m := range []map[callShare]float64{cs.on.byStack[stack], cs.on.byPC[pc], cs.off.byStack[stack], cs.off.byPC[pc]} {
		if calls = m; calls != nil {
			break
		}
	}
	if calls == nil {
		return nil
	}
	var total float64
	for _, v := range calls {
		total += v
	}
	out := make([]callShare, 0, len(calls))
	for k, v := range calls {
		out = append(out, callShare{op: k.op, class: k.class, share: v / total})
	}
	// Map order is random; sums over the shares must come out the same
	// every run.
	slices.SortFunc(out, func(a, b callShare) int {
		return cmp.Or(cmp.Compare(a.op, b.op), cmp.Compare(a.class, b.class))
	})
	return out
}

// lockHandoff is the part of a wait for a CPU (an off-CPU sample
// classified WaitRunQueue) that a lock's hand-off caused, beyond the
// lock code's own (waitClassOf): a thread preempted in a futex call
// outside the Go runtime, or on its way out of one (the waker of a
// futex, preempted by the thread it woke, is the commonest), whose
// futex waits can be contention (parking). A lock of the program's own
// on a futex (Rust's std, a hand-rolled one called through syscall(2))
// has no function of the C library's to name it.
func (cs callSites) lockHandoff(s *profile.Sample, fns []string, pk parking) float64 {
	var share float64
	if op := syscallOf(fns); op != "" {
		if hasExact([]string{op}, futexCalls...) && onCPUClass(OnCPUSyscall, fns) == ClassContention {
			share = 1
		}
	} else {
		for _, c := range cs.at(s) {
			if c.class == ClassContention && hasExact([]string{c.op}, futexCalls...) {
				share += c.share
			}
		}
	}
	if share == 0 {
		return 0
	}
	return share * pk.lockShare(s, fns)
}
