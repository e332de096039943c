package verdict

import (
	"math"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestThreadStateWait: what /proc says of a sleeping thread (its state,
// wchan, system call and descriptor, as read on kernel 6.18) names the
// wait as eBPF's stacks would.
func TestThreadStateWait(t *testing.T) {
	for _, c := range []struct {
		state, wchan, call, fd string
		goProc                 bool
		want                   string
	}{
		{"R", "", "", "", false, ""},
		{"S", "wait_woken", "recvfrom", "socket", false, WaitNetwork},
		{"S", "wait_woken", "read", "socket", false, WaitNetwork},
		{"S", "sk_wait_data", "", "", false, WaitNetwork},
		{"S", "inet_csk_accept", "accept4", "socket", false, WaitNetwork},
		{"S", "anon_pipe_read", "read", "pipe", false, WaitOther},
		{"S", "poll_schedule_timeout.constprop.0", "poll", "", false, WaitPoll},
		{"S", "do_epoll_wait", "epoll_pwait", "eventpoll", true, WaitPoll}, // Go's netpoller: an event loop
		{"S", "futex_do_wait", "futex", "", false, WaitLock},
		{"S", "futex_do_wait", "futex", "", true, WaitIdle}, // the Go runtime parks its threads
		{"S", "hrtimer_nanosleep", "nanosleep", "", false, WaitSleep},
		{"S", "do_wait", "wait4", "", false, WaitOther},
		{"S", "rwsem_down_write_slowpath", "mmap", "", false, WaitLock},
		{"D", "rwsem_down_read_slowpath", "", "", false, WaitFault}, // a fault waiting for the mm lock
		{"D", "io_schedule", "fsync", "file", false, WaitDisk},
		{"D", "folio_wait_bit_common", "pread64", "file", false, WaitDisk},
		{"D", "jbd2_log_wait_commit", "fdatasync", "file", false, WaitDisk},
		{"D", "some_driver_wait", "ioctl", "device", false, WaitOther}, // a device is not a disk (a GPU, a tty)
		{"D", "rwsem_down_write_slowpath", "munmap", "", false, WaitLock},
		// What 6.18's wchan says of a munmap or mprotect waiting for the
		// mm lock (the lock's slow path is skipped: a scheduling function),
		// and of a fault waiting for it.
		{"D", "__vm_munmap", "munmap", "", false, WaitLock},
		{"D", "do_mprotect_pkey", "mprotect", "", false, WaitLock},
		{"D", "__vma_start_write", "munmap", "", false, WaitLock},
		{"D", "lock_mm_and_find_vma", "", "", false, WaitFault},
		{"D", "msleep", "ioctl", "anon_inode", false, WaitOther},
	} {
		if got := threadStateWait(c.state, c.wchan, c.call, c.fd, c.goProc); got != c.want {
			t.Errorf("%s %s %s fd=%s go=%v: %q, want %q", c.state, c.wchan, c.call, c.fd, c.goProc, got, c.want)
		}
	}
}

// threadStateObs is a process's observation with a threadstate profile
// of rows: tid, state, wchan, call, futex operation and lock word,
// seconds.
type tsRow struct {
	tid                          int64
	state, wchan, call, op, word string
	seconds                      float64
}

func threadStateObs(goVersion string, rows ...tsRow) *observation.Observation {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "thread_time", Unit: "nanoseconds"}},
	}
	kernel := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]"}
	p.Mapping = []*profile.Mapping{kernel}
	for _, r := range rows {
		s := &profile.Sample{
			Value:    []int64{1, int64(r.seconds * 1e9)},
			Label:    map[string][]string{"state": {r.state}},
			NumLabel: map[string][]int64{"pid": {7}, "tid": {r.tid}},
		}
		for k, v := range map[string]string{"syscall": r.call, "futex": r.op, "futex_val": r.word} {
			if v != "" {
				s.Label[k] = []string{v}
			}
		}
		if r.wchan != "" {
			fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: r.wchan}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: kernel, Line: []profile.Line{{Function: fn}}}
			p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
			s.Location = []*profile.Location{loc}
		}
		p.Sample = append(p.Sample, s)
	}
	var labels map[string]string
	if goVersion != "" {
		labels = map[string]string{observation.ProfileLabelGo: goVersion}
	}
	return &observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindThreadState,
		Source: observation.SourceProcFS, Labels: labels, Profile: p}}}
}

// TestThreadStateParking: a futex wait is a lock wait as far as parking's
// per-thread rule allows, all of it when the lock word says a mutex
// (FUTEX_WAIT expecting 2), none of it in a Go program.
func TestThreadStateParking(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// Two threads: a worker that runs 1 s and waits 3 s on a condition,
	// and an idle one parked 4 s. With two threads a waiter waits at most
	// once as long as it works: 1 s of the worker's 3 is a lock, the
	// idle thread's 4 s are parking.
	o := threadStateObs("",
		tsRow{1, "R", "", "", "", "", 1},
		tsRow{1, "S", "futex_do_wait", "futex", "wait_bitset", "", 3},
		tsRow{2, "S", "futex_do_wait", "futex", "wait_bitset", "", 4})
	p, goProc := threadStateProfile(o)
	w := threadStateWaits(p, goProc)
	secs, byClass := w.seconds, w.byClass
	if !near(secs[WaitLock], 1) || !near(secs[WaitIdle], 6) || !near(byClass[ClassContention], 1) {
		t.Errorf("condition waits: %v %v, want 1 s of lock and 6 s idle", secs, byClass)
	}
	// The same, waiting on a lock word held with waiters: a mutex.
	o = threadStateObs("",
		tsRow{1, "R", "", "", "", "", 1},
		tsRow{1, "S", "futex_do_wait", "futex", "wait", "2", 3},
		tsRow{2, "S", "futex_do_wait", "futex", "wait", "2", 4})
	p, goProc = threadStateProfile(o)
	if secs := threadStateWaits(p, goProc).seconds; !near(secs[WaitLock], 7) || secs[WaitIdle] != 0 {
		t.Errorf("mutex waits: %v, want 7 s of lock", secs)
	}
	// A Go program: the runtime's own parking.
	o = threadStateObs("go1.26.0",
		tsRow{1, "R", "", "", "", "", 1},
		tsRow{1, "S", "futex_do_wait", "futex", "wait", "0", 3})
	p, goProc = threadStateProfile(o)
	if secs := threadStateWaits(p, goProc).seconds; secs[WaitLock] != 0 || !near(secs[WaitIdle], 3) {
		t.Errorf("Go's parked threads: %v, want idle", secs)
	}
}

// TestRunDelayShares: a process's run delay follows its voluntary
// switches' sleeps in their share (idle parking left out), and its
// involuntary switches are the CPU's unless they come faster than
// preemptions can in a process of several threads: then they are yields.
func TestRunDelayShares(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	obs := func(vol, invol, cpu float64) *observation.Observation {
		o := threadStateObs("")
		o.Series = []observation.Series{
			{Name: observation.ProcessCtxSwitches, Labels: map[string]string{"kind": "voluntary"}, Points: []observation.Point{{Value: vol}}},
			{Name: observation.ProcessCtxSwitches, Labels: map[string]string{"kind": "involuntary"}, Points: []observation.Point{{Value: invol}}},
			{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "user"}, Points: []observation.Point{{Value: cpu}}},
		}
		return o
	}
	w := sampledWaits{seconds: map[string]float64{WaitLock: 2, WaitSleep: 1, WaitNetwork: 1, WaitIdle: 10}, lockRun: 1}
	got := runDelayShares(obs(300, 100, 1), w)
	if !near(got[ClassCPU], 0.25) || !near(got[ClassContention], 0.75*0.5) || !near(got[ClassNetwork], 0.75*0.25) || !near(got[ClassNone], 0.75*0.25) {
		t.Errorf("shares %v, want cpu 0.25 (1/4 involuntary), contention 0.375, network and none 0.1875 (3/4 after sleeps: half on locks, a quarter each on sockets and timers; idle left out)", got)
	}
	// 40,000 involuntary switches a CPU-second: yields, not preemptions.
	got = runDelayShares(obs(0, 40000, 1), w)
	if !near(got[ClassContention], 1) || got[ClassCPU] != 0 {
		t.Errorf("yielding threads: %v, want all contention", got)
	}
	// The same rate in threads that cannot be yielding to a lock's holder
	// (lockRun 0: processes of one thread, Go's, threads that sleep on
	// other things; TestLockRun says which).
	got = runDelayShares(obs(0, 40000, 1), sampledWaits{seconds: w.seconds})
	if !near(got[ClassCPU], 1) {
		t.Errorf("switched fast, no lock in sight: %v, want cpu", got)
	}
	// Preemptions at a slice's pace stay the CPU's.
	got = runDelayShares(obs(0, 1000, 1), w)
	if !near(got[ClassCPU], 1) {
		t.Errorf("preempted threads: %v, want cpu", got)
	}
	if got := runDelayShares(obs(300, 100, 1), sampledWaits{seconds: map[string]float64{WaitIdle: 5}}); !near(got[ClassCPU], 1) {
		t.Errorf("only idle sleeps: %v, want cpu", got)
	}
	if got := runDelayShares(&observation.Observation{}, w); !near(got[ClassCPU], 1) || len(got) != 1 {
		t.Errorf("no switch counts: %v, want cpu", got)
	}
}

// TestLockRun: the threads that could be yielding to a lock's holder are
// those of a process of several threads, not Go's, that never slept (not
// even parked idle) or slept on locks, each in its sleeps' lock share.
func TestLockRun(t *testing.T) {
	spinner := func(tid int64) tsRow { return tsRow{tid, "R", "", "", "", "", 1} }
	for _, tc := range []struct {
		name  string
		goVer string
		rows  []tsRow
		pidOf map[int64]int64 // a tid's process, when not 7
		want  float64
	}{
		{"spinners", "", []tsRow{spinner(1), spinner(2)}, nil, 1},
		{"a process of one thread", "", []tsRow{spinner(1)}, nil, 0},
		{"two processes of one thread", "", []tsRow{spinner(1), spinner(2)}, map[int64]int64{2: 8}, 0},
		{"Go", "go1.26.0", []tsRow{spinner(1), spinner(2)}, nil, 0},
		{"a lock's waiters", "", []tsRow{
			spinner(1), {1, "S", "futex_do_wait", "futex", "wait", "2", 1},
			spinner(2), {2, "S", "futex_do_wait", "futex", "wait", "2", 1},
		}, nil, 1},
		{"pipe readers, woken fast", "", []tsRow{
			spinner(1), {1, "S", "pipe_read", "read", "", "", 1},
			spinner(2), {2, "S", "pipe_read", "read", "", "", 1},
		}, nil, 0},
		{"half on a lock, half on a pipe", "", []tsRow{
			spinner(1), {1, "S", "futex_do_wait", "futex", "wait", "2", 1}, {1, "S", "pipe_read", "read", "", "", 1},
			spinner(2),
		}, nil, 0.75},
	} {
		o := threadStateObs(tc.goVer, tc.rows...)
		p, goProc := threadStateProfile(o)
		for _, smp := range p.Sample {
			if pid, ok := tc.pidOf[smp.NumLabel["tid"][0]]; ok {
				smp.NumLabel["pid"] = []int64{pid}
			}
		}
		if got := threadStateWaits(p, goProc).lockRun; math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: lockRun %.3f, want %.3f", tc.name, got, tc.want)
		}
	}
}

// TestRunDelayWhole: the run delay's parts, none's among them, add up
// to the whole delay.
func TestRunDelayWhole(t *testing.T) {
	o := threadStateObs("", tsRow{1, "R", "", "", "", "", 1}, tsRow{1, "S", "do_epoll_wait", "epoll_wait", "", "", 3},
		tsRow{2, "S", "futex_do_wait", "futex", "wait", "2", 1})
	o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: 7}
	o.Series = []observation.Series{
		{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "user"}, Points: []observation.Point{{Value: 0.5}}},
		{Name: observation.ProcessRunDelay, Points: []observation.Point{{Value: 0.3}}},
		{Name: observation.ProcessCtxSwitches, Labels: map[string]string{"kind": "voluntary"}, Points: []observation.Point{{Value: 900}}},
		{Name: observation.ProcessCtxSwitches, Labels: map[string]string{"kind": "involuntary"}, Points: []observation.Point{{Value: 100}}},
	}
	b := procBreakdown(o, 10, DefaultThresholds())
	if math.Abs(b.Seconds[WaitRunQueue]-3) > 1e-9 {
		t.Errorf("run queue %.3f s, want the whole 3 s of run delay", b.Seconds[WaitRunQueue])
	}
	// 0.9 of it after wake-ups: 3/4 from the poll (none), 1/4 from the lock.
	if math.Abs(b.RunQueueCPU-0.3) > 1e-9 || math.Abs(b.ByClass[ClassContention]-(1+0.675)) > 1e-9 {
		t.Errorf("run queue as cpu %.3f s, contention %.3f s: want 0.3 (the preemptions') and 1.675 (the lock's 1 s and its wake-ups' 0.675)",
			b.RunQueueCPU, b.ByClass[ClassContention])
	}
}

// TestSystemTimeBySleeps: without a profile, a process's system time is
// split by the calls its threads sleep in: a lock's futexes count towards
// contention, munmap's towards memory, a socket's towards network; poll
// and sleeps, and idle parking, leave it cpu.
func TestSystemTimeBySleeps(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	const window = 10.0
	withCPU := func(o *observation.Observation, user, system float64) *observation.Observation {
		o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: 7}
		o.Series = []observation.Series{
			{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "user"}, Points: []observation.Point{{Value: user}}},
			{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "system"}, Points: []observation.Point{{Value: system}}},
		}
		return o
	}
	for _, tc := range []struct {
		name string
		rows []tsRow
		want map[Class]float64 // of the 5 s of system time
	}{
		{"mutex waiters", []tsRow{
			{1, "R", "", "", "", "", 1}, {1, "S", "futex_do_wait", "futex", "wait", "2", 3},
			{2, "R", "", "", "", "", 1}, {2, "S", "futex_do_wait", "futex", "wait", "2", 3},
		}, map[Class]float64{ClassContention: 5}},
		{"mapping churn on the mm lock, and a napper running as long", []tsRow{
			{1, "R", "", "", "", "", 1}, {1, "D", "__vm_munmap", "munmap", "", "", 1.5}, {1, "D", "lock_mm_and_find_vma", "", "", "", 0.5},
			{2, "R", "", "", "", "", 1}, {2, "S", "hrtimer_nanosleep", "nanosleep", "", "", 2},
		}, map[Class]float64{ClassMemory: 2.5, ClassCPU: 2.5}},
		{"a socket and an event loop, in one thread", []tsRow{
			{1, "R", "", "", "", "", 1}, {1, "S", "wait_woken", "recvfrom", "", "", 2}, {1, "S", "do_epoll_wait", "epoll_wait", "", "", 2},
		}, map[Class]float64{ClassNetwork: 2.5, ClassCPU: 2.5}},
		// A listener that only waits in accept, and a worker that runs
		// and never sleeps: the worker's kernel time is its own.
		{"a listener and a busy worker", []tsRow{
			{1, "S", "inet_csk_accept", "accept4", "", "", 10},
			{2, "R", "", "", "", "", 10},
		}, map[Class]float64{ClassCPU: 5}},
		// No thread seen running: the sleeps as they are.
		{"asleep in recv throughout", []tsRow{
			{1, "S", "wait_woken", "recvfrom", "", "", 10},
		}, map[Class]float64{ClassNetwork: 5}},
		{"idle parking only", []tsRow{
			{1, "R", "", "", "", "", 1},
			{2, "S", "futex_do_wait", "futex", "wait_bitset", "", 9},
		}, map[Class]float64{ClassCPU: 5}},
	} {
		o := withCPU(threadStateObs("", tc.rows...), 0, 0.5)
		b := procBreakdown(o, window, DefaultThresholds())
		if !near(b.Seconds[OnCPUSyscall], 5) {
			t.Errorf("%s: cpu.syscall %.3f s, want all 5 s of system time", tc.name, b.Seconds[OnCPUSyscall])
		}
		// The system time's part of each class: the class's total less
		// what the waits themselves count there.
		w := threadStateWaits(threadStateProfile(o))
		for _, c := range []Class{ClassCPU, ClassContention, ClassMemory, ClassNetwork} {
			if got := b.ByClass[c] - w.byClass[c]; !near(got, tc.want[c]) {
				t.Errorf("%s: %s got %.3f s of the system time, want %.3f", tc.name, c, got, tc.want[c])
			}
		}
	}
}

// TestThreadStatesPerProcessGo: in a process tree's profile each sample
// says whether its own process is a Go program: a shell's Go child's
// parked threads are idle, a C child's mutex waiters are not.
func TestThreadStatesPerProcessGo(t *testing.T) {
	o := threadStateObs("",
		tsRow{1, "S", "futex_do_wait", "futex", "wait", "2", 3},
		tsRow{2, "S", "futex_do_wait", "futex", "wait", "2", 4})
	p, goProc := threadStateProfile(o)
	p.Sample[1].Label[observation.ProfileLabelGo] = []string{"go1.26.0"} // thread 2's process is Go
	secs := threadStateWaits(p, goProc).seconds
	if math.Abs(secs[WaitLock]-3) > 1e-9 || math.Abs(secs[WaitIdle]-4) > 1e-9 {
		t.Errorf("waits %v, want 3 s of lock (the C process) and 4 s idle (the Go one)", secs)
	}
}

// TestSystemTimeGoThreads: a Go program's threads are one for the system
// time: the thread that waits in the netpoller is not the one that ran
// the goroutine writing to the socket, and sysmon's nanosleep is the
// runtime's, idle.
func TestSystemTimeGoThreads(t *testing.T) {
	o := threadStateObs("go1.26.0",
		tsRow{1, "R", "", "", "", "", 4}, tsRow{1, "S", "hrtimer_nanosleep", "nanosleep", "", "", 0.1},
		tsRow{2, "R", "", "", "", "", 1}, tsRow{2, "S", "do_epoll_wait", "epoll_pwait", "", "", 3},
		tsRow{3, "S", "hrtimer_nanosleep", "nanosleep", "", "", 5})
	o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: 7}
	o.Series = []observation.Series{
		{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "system"}, Points: []observation.Point{{Value: 0.4}}},
		{Name: observation.ProcessTCPBytes, Labels: map[string]string{"role": "active", "direction": "sent"}, Points: []observation.Point{{Value: 1}}},
	}
	b := procBreakdown(o, 10, DefaultThresholds())
	if math.Abs(b.ByClass[ClassNetwork]-4) > 1e-6 || b.Seconds[WaitSleep] != 0 {
		t.Errorf("by class %v, waits %v: want the 4 s of system time as network, no sleep", b.ByClass, b.Seconds)
	}
	// The same program writing 1.6 GB/s to files while a metrics scrape
	// carries 100 bytes a second: the counters' io first, the netpoller's
	// share of what is left.
	o.Series = append(o.Series, observation.Series{Name: observation.ProcessStorageBytes,
		Labels: map[string]string{"op": "write"}, Points: []observation.Point{{Value: 1.6e9}}})
	o.Series[1].Points[0].Value = 100
	b = procBreakdown(o, 10, DefaultThresholds())
	if math.Abs(b.ByClass[ClassIO]-4) > 1e-6 || b.ByClass[ClassNetwork] > 1e-6 {
		t.Errorf("a Go file writer: by class %v, want the 4 s of system time as io", b.ByClass)
	}
}

// TestThreadStatesParkingPerProcess: the parking rule counts the threads of
// the waiter's own process, not a process tree's: a shell's 20 busy
// children do not make a parked thread of another process a lock waiter.
func TestThreadStatesParkingPerProcess(t *testing.T) {
	rows := []tsRow{
		{1, "R", "", "", "", "", 1}, {1, "S", "futex_do_wait", "futex", "wait_bitset", "", 9},
		{2, "R", "", "", "", "", 10},
	}
	for tid := int64(100); tid < 120; tid++ {
		rows = append(rows, tsRow{tid, "R", "", "", "", "", 10})
	}
	o := threadStateObs("", rows...)
	p, goProc := threadStateProfile(o)
	for _, s := range p.Sample {
		if s.NumLabel["tid"][0] >= 100 {
			s.NumLabel["pid"] = []int64{8} // another process of the tree
		}
	}
	if secs := threadStateWaits(p, goProc).seconds; math.Abs(secs[WaitLock]-1) > 1e-9 {
		t.Errorf("lock %.2f s, want 1 s: two threads in the waiter's process, one active 1 s", secs[WaitLock])
	}
}

// TestSystemTimeEventLoop: an event loop's waits (epoll) speak for socket
// work when the process's TCP connections carried data in the window, and
// for nothing otherwise.
func TestSystemTimeEventLoop(t *testing.T) {
	for _, carried := range []bool{false, true} {
		o := threadStateObs("", tsRow{1, "R", "", "", "", "", 1}, tsRow{1, "S", "do_epoll_wait", "epoll_wait", "", "", 3})
		o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: 7}
		o.Series = []observation.Series{
			{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "system"}, Points: []observation.Point{{Value: 0.4}}},
			{Name: observation.ProcessTCPBytes, Labels: map[string]string{"role": "active", "direction": "sent"}, Points: []observation.Point{{Value: 0}}},
		}
		if carried {
			o.Series[1].Points[0].Value = 5e7
		}
		b := procBreakdown(o, 10, DefaultThresholds())
		want := map[bool]Class{false: ClassCPU, true: ClassNetwork}[carried]
		if math.Abs(b.ByClass[want]-4) > 1e-6 {
			t.Errorf("connections carried data: %v; by class %v, want the 4 s of system time as %s", carried, b.ByClass, want)
		}
	}
}

// TestSystemTimeByCounters: threads that only ever run say nothing of
// their kernel time in their states; a process's counters do, in part.
// The bytes its TCP connections carried are the network's, its faults
// memory's, the bytes it dirtied or fetched in files io's, each at its
// cost, and never more than the system time there is; its reads and
// writes of other descriptors (a pipe, /dev/null) stay cpu.
func TestSystemTimeByCounters(t *testing.T) {
	series := func(sysCores, tcpReceived, tcpSent, faults float64, storage ...float64) []observation.Series {
		var stored float64
		if len(storage) > 0 {
			stored = storage[0]
		}
		return []observation.Series{
			{Name: observation.ProcessStorageBytes, Labels: map[string]string{"op": "write"}, Points: []observation.Point{{Value: stored}}},
			{Name: observation.ProcessCPU, Labels: map[string]string{"mode": "system"}, Points: []observation.Point{{Value: sysCores}}},
			{Name: observation.ProcessMinorFaults, Points: []observation.Point{{Value: faults}}},
			{Name: observation.ProcessTCPBytes, Labels: map[string]string{"role": "active", "direction": "received"}, Points: []observation.Point{{Value: tcpReceived}}},
			{Name: observation.ProcessTCPBytes, Labels: map[string]string{"role": "passive", "direction": "sent"}, Points: []observation.Point{{Value: tcpSent}}},
			// Written to a pipe: no evidence of anything.
			{Name: observation.ProcessSyscallBytes, Labels: map[string]string{"op": "write"}, Points: []observation.Point{{Value: 2e9}}},
		}
	}
	for _, tc := range []struct {
		name   string
		series []observation.Series
		want   map[Class]float64 // seconds of the 10-s window
	}{
		// 0.4 GB/s received: 0.1 s a second.
		{"download", series(0.3, 4e8, 0, 0), map[Class]float64{ClassNetwork: 1, ClassCPU: 2}},
		// 2 GB/s each way: 1 s a second explained, 0.3 there is.
		{"loopback", series(0.3, 2e9, 2e9, 0), map[Class]float64{ClassNetwork: 3}},
		{"pipe", series(0.3, 0, 0, 0), map[Class]float64{ClassCPU: 3}},
		// 100,000 faults a second explain 0.1 s of each 0.3.
		{"faults", series(0.3, 0, 0, 1e5), map[Class]float64{ClassMemory: 1, ClassCPU: 2}},
		// Both, more than there is: shared in their proportions.
		{"both", series(0.1, 4e8, 0, 3e5), map[Class]float64{ClassNetwork: 0.25, ClassMemory: 0.75}},
		// 0.8 GB/s dirtied in the page cache: 0.2 s a second.
		{"file writer", series(0.3, 0, 0, 0, 8e8), map[Class]float64{ClassIO: 2, ClassCPU: 1}},
	} {
		o := threadStateObs("", tsRow{1, "R", "", "", "", "", 1})
		o.Meta.Target = observation.Target{Kind: observation.TargetProcess, PID: 7}
		o.Series = tc.series
		b := procBreakdown(o, 10, DefaultThresholds())
		for _, c := range []Class{ClassCPU, ClassNetwork, ClassMemory, ClassIO} {
			if math.Abs(b.ByClass[c]-tc.want[c]) > 1e-6 {
				t.Errorf("%s: by class %v, want %v", tc.name, b.ByClass, tc.want)
				break
			}
		}
	}
}
