package verdict

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// at is stack with the user frames at addresses: the innermost at pc,
// each caller at the next addrs.
func at(pc uint64, callers []uint64, names ...string) *profile.Sample {
	s := stack(names...)
	addrs := append([]uint64{pc}, callers...)
	for _, l := range s.Location {
		if !IsKernel(l) && len(addrs) > 0 {
			l.Address, addrs = addrs[0], addrs[1:]
		}
	}
	return s
}

// TestCallSites: samples at a system call's boundary, which do not name
// the call, are charged as the samples inside it made from the same
// place are. The stacks are stress-ng's futex stressor's (its `syscall`
// stub returns to 0x7f4443ef4829), with a second caller of the same stub
// writing to a socket.
func TestCallSites(t *testing.T) {
	const ret = 0x7f4443ef4829 // the instruction after the stub's syscall
	worker := []uint64{0x1732f0, 0x193580}
	sender := []uint64{0x1a0000, 0x193580}
	entry := []string{"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:syscall"}
	inFutex := at(ret, worker, append([]string{"k:futex_wake", "k:do_futex", "k:__x64_sys_futex"}, append(entry, "worker", "main")...)...)
	inWrite := at(ret, sender, append([]string{"k:tcp_sendmsg", "k:sock_write_iter", "k:ksys_write"}, append(entry, "sender", "main")...)...)
	// The timer that fell due on the way out, delivered at the first
	// user instruction; a reschedule on the way out; an interrupt taken
	// there; the same with the user stack walked no further than the stub.
	returned := at(ret, worker, "c:syscall", "worker", "main")
	exiting := at(ret, worker, append([]string{"k:pvm_irq_enable", "k:finish_task_switch.isra.0", "k:__schedule", "k:schedule",
		"k:exit_to_user_mode_loop"}, append(entry, "worker", "main")...)...)
	ipi := at(ret, sender, "k:pvm_irq_enable", "k:irqentry_exit_to_user_mode", "k:asm_sysvec_reschedule_ipi", "c:syscall", "sender", "main")
	cut := at(ret, nil, "c:syscall")
	// Not at a boundary: the next instruction, the worker's own code, a
	// timer interrupt in it, a page fault.
	next := at(ret+6, worker, "c:syscall", "worker", "main")
	own := at(0x1732a0, []uint64{0x193580}, "worker", "main")
	tick := at(0x1732a0, []uint64{0x193580}, "k:asm_sysvec_apic_timer_interrupt", "worker", "main")
	fault := at(ret, worker, "k:handle_mm_fault", "k:exc_page_fault", "k:asm_exc_page_fault", "c:syscall", "worker", "main")

	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	for _, s := range []*profile.Sample{inFutex, inWrite, returned, exiting, ipi, cut, next, own, tick, fault} {
		s.Value = []int64{int64(time.Second)}
		p.Sample = append(p.Sample, s)
	}
	inFutex.Value[0] = 3 * int64(time.Second) // the worker's stub is the futex's three times as often

	// Off the CPU, waiting for one: preempted leaving the futex (the
	// waker, by the thread it woke), leaving the write, in own code.
	off := &profile.Profile{SampleType: []*profile.ValueType{{Type: "off_cpu", Unit: "nanoseconds"}}}
	preempted := append([]string{"k:__schedule", "k:schedule", "k:exit_to_user_mode_loop"}, entry...)
	handoff := at(ret, worker, append(preempted, "worker", "main")...)
	afterWrite := at(ret, sender, append(preempted, "sender", "main")...)
	ticked := at(0x1732a0, []uint64{0x193580}, "k:__schedule", "k:schedule", "k:irqentry_exit_to_user_mode",
		"k:asm_sysvec_apic_timer_interrupt", "worker", "main")
	// A read that blocked: its call is named off the CPU only.
	const recvRet = 0x7f4443f1a0b2
	reader := []uint64{0x1b0000, 0x193580}
	recvWait := at(recvRet, reader, append([]string{"k:__schedule", "k:schedule", "k:schedule_timeout", "k:wait_woken",
		"k:sk_wait_data", "k:tcp_recvmsg", "k:__sys_recvfrom", "k:__x64_sys_recvfrom"}, append(entry[:2:2], "c:recv", "reader", "main")...)...)
	recvWait.Label = map[string][]string{"state": {"S"}}
	recvWait.Value = []int64{int64(time.Second)}
	off.Sample = append(off.Sample, recvWait)
	received := at(recvRet, reader, "c:recv", "reader", "main")
	received.Value = []int64{int64(time.Second)}
	p.Sample = append(p.Sample, received)
	for _, s := range []*profile.Sample{handoff, afterWrite, ticked} {
		s.Value = []int64{int64(time.Second)}
		s.Label = map[string][]string{"state": {"R"}}
		off.Sample = append(off.Sample, s)
	}
	// The worker also waits on the lock, while others work: its futex
	// waits can be contention, and so its hand-offs (handoffShare).
	lockWait := at(ret, worker, append([]string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait",
		"k:do_futex", "k:__x64_sys_futex"}, append(entry, "worker", "main")...)...)
	lockWait.Value = []int64{int64(time.Second)}
	lockWait.Label = map[string][]string{"state": {"S"}}
	off.Sample = append(off.Sample, lockWait)
	// Threads: the worker's samples are thread 11's, the rest 12's.
	for _, s := range append(slices.Clone(p.Sample), off.Sample...) {
		tid := int64(12)
		if slices.Contains([]*profile.Sample{inFutex, returned, exiting, next, own, tick, fault, handoff, ticked, lockWait}, s) {
			tid = 11
		}
		s.NumLabel = map[string][]int64{"pid": {7}, "tid": {tid}}
	}

	o := &observation.Observation{Profiles: []observation.Profile{
		{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: p},
		{Kind: observation.KindOffCPU, Source: observation.SourceEBPF, Profile: off},
	}}
	cl := newClassifier(parkingOf(o))
	sites := callSitesOf(o, cl)

	for _, c := range []struct {
		name string
		s    *profile.Sample
		want map[Class]float64 // nil: not at a call's boundary
	}{
		{"inside the futex", inFutex, nil},
		{"inside the write", inWrite, nil},
		{"returned from the futex", returned, map[Class]float64{ClassContention: 1}},
		{"rescheduled leaving the futex", exiting, map[Class]float64{ClassContention: 1}},
		{"interrupted returning from the write", ipi, map[Class]float64{ClassNetwork: 1}},
		{"stack cut at the stub: by its address", cut, map[Class]float64{ClassContention: 0.75, ClassNetwork: 0.25}},
		{"the next instruction", next, nil},
		{"own code", own, nil},
		{"a timer tick in own code", tick, nil},
		{"a page fault", fault, nil},
		{"returned from a read seen only blocked", received, map[Class]float64{ClassNetwork: 1}},
	} {
		got := map[Class]float64{}
		calls := sites.of(c.s, cl.of(c.s))
		for _, k := range calls {
			got[k.class] += k.share
		}
		if c.want == nil {
			if calls != nil {
				t.Errorf("%s: charged to %v, want its own frames' class", c.name, calls)
			}
			continue
		}
		for class, w := range c.want {
			if math.Abs(got[class]-w) > 1e-9 {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
				break
			}
		}
	}

	// The breakdown and the priorities charge them so.
	b := BreakdownOf(o)
	// Contention: the futex's 3 s, the returned and exiting samples, 0.75
	// of the cut one, the hand-off's wait; network: the write, the
	// interrupt, 0.25 of the cut (and the read's, below); cpu: the next instruction, own code,
	// the tick, and the waits after the write and the tick.
	if got := b.ByClass[ClassContention]; math.Abs(got-7.75) > 1e-9 {
		t.Errorf("contention %.2f s, want 7.75: and the worker's lock wait (%v)", got, b.ByClass)
	}
	if got := b.ByClass[ClassCPU]; math.Abs(got-5) > 1e-9 {
		t.Errorf("cpu %.2f s, want 5 (%v)", got, b.ByClass)
	}
	if got := b.ByClass[ClassNetwork]; math.Abs(got-4.25) > 1e-9 {
		t.Errorf("network %.2f s, want 4.25: the write's 2.25, the read returned, and its wait (%v)", got, b.ByClass)
	}
	if got := b.Seconds[OnCPUUser]; math.Abs(got-2) > 1e-9 {
		t.Errorf("user code %.2f s, want 2: the next instruction and own code (%v)", got, b.Seconds)
	}
	var lock, stub float64
	for _, it := range cpuItems(p, sites, cl, observation.SourceEBPF, 1, 1) {
		if it.Name == "worker" && it.Class == ClassContention {
			lock = it.Saving
		}
		if it.Kind == PriorityFunction && it.Name == "syscall" {
			stub = it.Saving
		}
	}
	if stub != 1 {
		t.Errorf("the stub's own code saves %.2f s/s, want 1: the next instruction's; the rest is its calls'", stub)
	}
	if math.Abs(lock-5) > 1e-9 {
		t.Errorf("the worker's lock saves %.2f s/s, want 5 (the futex's 3, the returned and the exiting samples)", lock)
	}
	var waited []string
	for _, it := range waitItems(off, sites, cl, parkingOf(o), 1) {
		waited = append(waited, fmt.Sprintf("%s %s %.2f", it.Class, it.Name, it.Saving))
	}
	if want := []string{"network recvfrom from reader 1.00", "contention worker 1.00", "contention worker 1.00"}; !slices.Equal(waited, want) {
		t.Errorf("wait items %q, want %q", waited, want)
	}
}

// TestHandoffShare: a wait for a CPU at a futex hand-off is a lock's in
// the part of its thread's futex waits that can be contention; a thread
// that never waited on a futex (a producer waking a pool's idle workers)
// takes its process's part, none when the process only parked.
func TestHandoffShare(t *testing.T) {
	sample := func(pid, tid int64) *profile.Sample {
		return &profile.Sample{NumLabel: map[string][]int64{"pid": {pid}, "tid": {tid}}}
	}
	pk := parking{
		{pid: 1, tid: 2}: 0, {pid: 1, tid: wholeProcess}: 0, // a pool: its workers only park
		{pid: 5, tid: 6}: 0.5, {pid: 5, tid: 7}: 1, {pid: 5, tid: wholeProcess}: 0.8,
		{pid: 9}: goProcess,
	}
	for _, c := range []struct {
		pid, tid int64
		want     float64
	}{
		{1, 2, 0}, {1, 3, 0}, // a parked worker; the producer waking it
		{5, 6, 0.5}, {5, 7, 1}, {5, 8, 0.8}, // its own share; the process's
		{9, 0, 0}, {9, 4, 0}, // a Go process's mark is no share
		{11, 1, 0}, // a process without futex waits
	} {
		if got := pk.handoffShare(sample(c.pid, c.tid)); got != c.want {
			t.Errorf("pid %d tid %d: %v, want %v", c.pid, c.tid, got, c.want)
		}
	}
}

// TestYields: a yield of a process of several threads waits on another of
// its threads (yieldCalls), so its time on a CPU, in the call or in the C
// library's stub, and the wait for a CPU it asked for are contention, and
// the priorities say it was yielding. A process of one thread yields for
// its own sake, and the Go runtime's yields are its scheduler's (cpu) or
// its lock's hand-off (contention, said as a lock's).
// The stacks are cwork yieldspin's and a Go program's.
func TestYields(t *testing.T) {
	call := []string{"k:do_sched_yield", "k:__do_sys_sched_yield", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe"}
	spinner := []string{"c:__sched_yield", "spin_lock_yielding", "yield_spin", "c:start_thread"}
	goYield := []string{"runtime.osyield", "runtime.stopm", "runtime.gcstopm", "runtime.findRunnable", "runtime.schedule", "runtime.mcall"}
	goHandoff := []string{"runtime.osyield", "runtime.semrelease1", "internal/sync.runtime_Semrelease", "internal/sync.(*Mutex).unlockSlow",
		"main.contend.func1", "runtime.goexit"}
	observe := func(pid int64, tids []int64, user []string) *observation.Observation {
		on := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
		off := &profile.Profile{SampleType: []*profile.ValueType{{Type: "off_cpu", Unit: "nanoseconds"}}}
		for _, tid := range tids {
			inCall := stack(slices.Concat([]string{"k:pvm_irq_enable", "k:finish_task_switch.isra.0", "k:__schedule", "k:schedule"}, call, user)...)
			inStub := stack(user...)
			runnable := stack(slices.Concat([]string{"k:__schedule", "k:schedule"}, call, user)...)
			runnable.Label = map[string][]string{"state": {"R"}}
			for _, s := range []*profile.Sample{inCall, inStub, runnable} {
				s.Value = []int64{int64(time.Second)}
				s.NumLabel = map[string][]int64{"pid": {pid}, "tid": {tid}}
			}
			on.Sample = append(on.Sample, inCall, inStub)
			off.Sample = append(off.Sample, runnable)
		}
		return &observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: on},
			{Kind: observation.KindOffCPU, Source: observation.SourceEBPF, Profile: off},
		}}
	}
	for _, c := range []struct {
		name             string
		tids             []int64
		user             []string
		contention, cpu  float64
		yieldingPriority bool
	}{
		{"a spin lock's waiters, two threads", []int64{11, 12}, spinner, 6, 0, true},
		{"a process of one thread", []int64{11}, spinner, 0, 3, false},
		{"the Go runtime's scheduler", []int64{11, 12}, goYield, 0, 6, false},
		{"a Go mutex handed over", []int64{11, 12}, goHandoff, 6, 0, false}, // the lock's, not a yield's
	} {
		o := observe(7, c.tids, c.user)
		b := BreakdownOf(o)
		if got := b.ByClass[ClassContention]; math.Abs(got-c.contention) > 1e-9 {
			t.Errorf("%s: contention %.2f s, want %.2f", c.name, got, c.contention)
		}
		if got := b.ByClass[ClassCPU]; math.Abs(got-c.cpu) > 1e-9 {
			t.Errorf("%s: cpu %.2f s, want %.2f", c.name, got, c.cpu)
		}
		// The run-queue time the cpu load holds, which the memory rule
		// takes out of it (choose): none when the yields are contention.
		want := 0.0
		if c.cpu > 0 {
			want = float64(len(c.tids)) // each thread's one second runnable
		}
		if math.Abs(b.RunQueueCPU-want) > 1e-9 {
			t.Errorf("%s: run-queue time counted as cpu %.2f s, want %.2f", c.name, b.RunQueueCPU, want)
		}
		pk := parkingOf(o)
		cl := newClassifier(pk)
		sites := callSitesOf(o, cl)
		items := slices.Concat(cpuItems(o.Profiles[0].Profile, sites, cl, observation.SourceEBPF, 1, 1),
			waitItems(o.Profiles[1].Profile, sites, cl, pk, 1))
		var onCPU, waited bool
		for _, p := range items {
			onCPU = onCPU || strings.Contains(p.Why, "in sched_yield, giving the CPU to other threads")
			waited = waited || strings.Contains(p.Why, "for a CPU after yielding it here")
		}
		if onCPU != c.yieldingPriority || waited != c.yieldingPriority {
			t.Errorf("%s: priorities say yielding on CPU %v, waiting %v; want %v: %+v", c.name, onCPU, waited, c.yieldingPriority, items)
		}
	}
}

// TestFileLockHandoff: a wait for a CPU on the way out of a flock call
// (the waker of the lock's next holder, preempted by it) is the lock's
// whole when the window shows a sleep on a file lock, with no futex waits
// to share it by: nobody parks idle on a file lock. Without one (a
// logger's flock around each write) it is the call's: cpu.
func TestFileLockHandoff(t *testing.T) {
	const ret = 0x7f2a1c0e3b1b // after the flock stub's syscall
	callers := []uint64{0x401256, 0x7f2a1c02a1ca}
	entry := []string{"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:flock", "main", "c:__libc_start_call_main"}
	for _, sleeps := range []bool{true, false} {
		inFlock := at(ret, callers, append([]string{"k:flock_lock_inode", "k:locks_lock_inode_wait", "k:__do_sys_flock"}, entry...)...)
		leaving := at(ret, callers, append([]string{"k:__schedule", "k:schedule", "k:exit_to_user_mode_loop"}, entry...)...)
		leaving.Label = map[string][]string{"state": {"R"}}
		off := []*profile.Sample{leaving}
		if sleeps {
			asleep := at(ret, callers, append([]string{"k:__schedule", "k:schedule", "k:locks_lock_inode_wait", "k:__do_sys_flock"}, entry...)...)
			asleep.Label = map[string][]string{"state": {"S"}}
			off = append(off, asleep)
		}
		for _, s := range append([]*profile.Sample{inFlock}, off...) {
			s.Value = []int64{int64(time.Second)}
			s.NumLabel = map[string][]int64{"pid": {7}, "tid": {7}}
		}
		o := &observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourceEBPF,
				Profile: &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}, Sample: []*profile.Sample{inFlock}}},
			{Kind: observation.KindOffCPU, Source: observation.SourceEBPF,
				Profile: &profile.Profile{SampleType: []*profile.ValueType{{Type: "off_cpu", Unit: "nanoseconds"}}, Sample: off}},
		}}
		b := BreakdownOf(o)
		switch {
		case sleeps && (b.ByClass[ClassContention] != 3 || b.ByClass[ClassCPU] != 0):
			t.Errorf("flock, the wait leaving it and a sleep on the lock: %v, want contention 3 s", b.ByClass)
		case !sleeps && (b.ByClass[ClassCPU] != 2 || b.ByClass[ClassContention] != 0):
			t.Errorf("flock and the wait leaving it, nobody asleep on the lock: %v, want cpu 2 s", b.ByClass)
		}
	}
}
