package collect

import (
	"bytes"
	"cmp"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf/symbolize"
)

// ThreadStates samples the state of a process's threads, and its
// descendants' (as the eBPF collectors follow them: a shell, make or a
// pre-fork master runs the processes that work), from
// /proc/PID/task/TID/{stat,wchan,syscall} many times a second, as Tanel
// Poder's psn does: the off-CPU view when eBPF cannot run. A thread that
// sleeps says why in three places the kernel keeps for it: its state (S
// interruptible, D uninterruptible), the kernel function it sleeps in
// (wchan: futex_do_wait, wait_woken, io_schedule...) and the system call
// it made with its arguments (syscall); the descriptor a call names is
// read from /proc/PID/fd. Sampled often enough, the share of the samples
// a thread spends in each is the share of its time: at 20 Hz over a
// 10 s window, 200 samples a thread.
//
// Each tick reads at most MaxThreads threads, the next ones in turn, and
// each reading stands for the threads not read in that tick: the cost is
// bounded whatever the thread count, the estimate stays unbiased. wchan
// and syscall are read only for a sleeping thread (a running one has
// neither). The files are held open between ticks (heldFiles).
//
// What it records is facts, not judgements (analyzer/verdict decides what
// a futex wait or a poll means); the profile is KindThreadState.
type ThreadStates struct {
	env      Env
	pid      int
	w        *procWatch
	interval time.Duration
	max      int
	files    *heldFiles
	calls    map[int]string // system call numbers to names, this machine's architecture

	// The ticker goroutine's own state.
	tasks         []task
	procs         map[int]*tsProcess // the tree's processes, by PID
	goVers        map[exeID]string   // executables' Go versions, read once each (a build starts thousands of processes of a few)
	cursor        int
	ticks         int
	lastTick      time.Time
	lastList      time.Time
	syscallDenied bool // syscall cannot be read: noSyscall says why

	mu        sync.Mutex
	goVer     string
	noSyscall error // why syscall cannot be read, once it could not: every window says so
	start     time.Time
	agg       map[threadStateKey]*threadStateCount
	done      chan struct{}
	stopped   chan struct{}
	close     sync.Once
}

// ThreadStateOptions say how often and how much to sample.
type ThreadStateOptions struct {
	Rate       int // ticks a second; default 20
	MaxThreads int // threads read a tick at most; default 32
}

// Defaults of ThreadStateOptions. At 20 Hz and 32 threads a tick the
// sampler reads at most 640 threads' files a second: measured on a
// 200-thread process, docs/benchmarks.md.
const (
	DefaultThreadStateRate = 20
	DefaultThreadsPerTick  = 32
)

// maxThreadStateKeys bounds the distinct (thread, state, wait) rows a
// window keeps; past it new rows lose their thread, then their wait.
const maxThreadStateKeys = 4096

type threadStateKey struct {
	pid      int
	goVer    string // its process's Go version, "" when it is not a Go program
	tid      int
	thread   string // the thread's name (comm)
	state    byte
	wchan    string
	call     string
	fd       string // the kind of the descriptor the call names
	futex    string // a futex call's operation
	futexVal int    // its expected value when 0, 1 or 2; -1 otherwise
}

// task is one thread of the tree.
type task struct {
	pid int
	tid string
}

// exeID is an executable file's identity.
type exeID struct{ dev, ino uint64 }

// maxExeIDs bounds goVers.
const maxExeIDs = 1024

// tsProcess is what the sampler keeps of one process of the tree.
type tsProcess struct {
	exe     string         // the executable's link, read again at each listing (a command execs)
	goVer   string         // the Go version it was built with, "" for another program
	fdKinds map[int]string // descriptors' kinds, read again at each listing
}

type threadStateCount struct {
	n     int64
	nanos float64
}

// StartThreadStates starts sampling the threads of pid until Close.
func StartThreadStates(env Env, pid int, opts ThreadStateOptions) (*ThreadStates, error) {
	t, err := newThreadStates(env, pid, opts)
	if err != nil {
		return nil, err
	}
	go t.run()
	return t, nil
}

// newThreadStates is StartThreadStates without the ticker: its ticks are
// its caller's (a benchmark's).
func newThreadStates(env Env, pid int, opts ThreadStateOptions) (*ThreadStates, error) {
	if opts.Rate <= 0 {
		opts.Rate = DefaultThreadStateRate
	}
	if opts.MaxThreads <= 0 {
		opts.MaxThreads = DefaultThreadsPerTick
	}
	env = env.withDefaults()
	w, err := newProcWatch(env, pid)
	if err != nil {
		return nil, err
	}
	t := &ThreadStates{
		env: env, pid: pid, w: w,
		interval: time.Second / time.Duration(opts.Rate),
		max:      opts.MaxThreads,
		files:    newHeldFiles(),
		procs:    map[int]*tsProcess{},
		goVers:   map[exeID]string{},
		start:    time.Now(),
		agg:      map[threadStateKey]*threadStateCount{},
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if info, err := arch.GetInfo(""); err == nil {
		t.calls = info.SyscallNumbers
	}
	t.process(pid)
	return t, nil
}

// GoVersion is the Go version the target's executable was built with,
// "" when it is not a Go program (or its executable cannot be read): a Go
// program's runtime parks its idle threads on futexes itself. Each sample
// of the profile says its own process's (a "go" label).
func (t *ThreadStates) GoVersion() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.goVer
}

// process is the tree's process pid, its executable's Go version read
// again when the executable is not the one read before: a command watched
// from its start is a shell until it execs the program.
func (t *ThreadStates) process(pid int) *tsProcess {
	p := t.procs[pid]
	if p == nil {
		p = &tsProcess{fdKinds: map[int]string{}}
		t.procs[pid] = p
	}
	path := t.env.proc(strconv.Itoa(pid), "exe")
	link, err := os.Readlink(path)
	if err != nil || link == p.exe {
		return p
	}
	p.exe, p.goVer = link, ""
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return p
	}
	id := exeID{st.Dev, st.Ino}
	ver, ok := t.goVers[id]
	if !ok {
		if bi, err := buildinfo.ReadFile(path); err == nil {
			ver = bi.GoVersion
		}
		if len(t.goVers) >= maxExeIDs {
			clear(t.goVers)
		}
		t.goVers[id] = ver
	}
	p.goVer = ver
	if pid == t.pid {
		t.mu.Lock()
		t.goVer = p.goVer
		t.mu.Unlock()
	}
	return p
}

func (t *ThreadStates) run() {
	defer close(t.stopped)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		if !t.tick() {
			return
		}
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
	}
}

// Close stops the sampling and closes the files it holds.
func (t *ThreadStates) Close() {
	t.close.Do(func() {
		close(t.done)
		<-t.stopped
		t.files.Close()
	})
}

// Finish returns the states sampled since Start or the previous Finish,
// as a profile of kind KindThreadState (nil when nothing was sampled), and
// what could not be read; the next window starts now.
func (t *ThreadStates) Finish() (*profile.Profile, []observation.Missing) {
	t.mu.Lock()
	agg, start := t.agg, t.start
	t.agg, t.start = map[threadStateKey]*threadStateCount{}, time.Now()
	var missing []observation.Missing
	if t.noSyscall != nil {
		missing = append(missing, observation.Missing{Signal: observation.SignalThreadStates,
			Reason: fmt.Sprintf("%v: system calls unread (another user's process needs CAP_SYS_PTRACE): thread states and kernel functions only", t.noSyscall)})
	}
	t.mu.Unlock()
	if len(agg) == 0 {
		return nil, missing
	}
	return t.profile(agg, start, time.Now()), missing
}

// tick reads the next threads in turn; false once the process is gone.
// It lists the tree again every second's worth of ticks, or once a second
// has passed since the last listing: a sampler that gets the CPU late
// (beside threads at a real-time priority, which stress-ng's mutex
// stressor gives its own) ticks far less often than it should, and
// counting ticks alone then missed a tree's workers for a whole window.
func (t *ThreadStates) tick() bool {
	if t.ticks%int(time.Second/t.interval) == 0 || len(t.tasks) == 0 || time.Since(t.lastList) >= time.Second {
		if !t.list() {
			return false
		}
		t.lastList = time.Now()
	}
	t.ticks++
	n := min(len(t.tasks), t.max)
	if n == 0 {
		return true
	}
	// Each reading stands for len/n threads over the time since the
	// previous tick: a tick the scheduler delays stands for longer.
	now := time.Now()
	span := t.interval
	if !t.lastTick.IsZero() {
		span = min(now.Sub(t.lastTick), time.Second)
	}
	t.lastTick = now
	weight := float64(span.Nanoseconds()) * float64(len(t.tasks)) / float64(n)
	readings := make([]threadStateKey, 0, n)
	for i := range n {
		if k, ok := t.read(t.tasks[(t.cursor+i)%len(t.tasks)]); ok {
			readings = append(readings, k)
		}
	}
	t.cursor = (t.cursor + n) % len(t.tasks)
	t.mu.Lock()
	for _, k := range readings {
		t.add(k, weight)
	}
	t.mu.Unlock()
	return true
}

// list reads the tree's processes and threads again (once a second): new
// ones join the rotation, the files of those gone are closed,
// descriptors' kinds are forgotten. False once the target is gone.
func (t *ThreadStates) list() bool {
	if st, ok, _ := t.w.read(); !ok || st.state == 'Z' {
		return false // exited: a zombie has no thread states
	}
	t.tasks = t.tasks[:0]
	live := map[task]bool{}
	alive := map[int]bool{}
	for i, pid := range append([]string{strconv.Itoa(t.pid)}, t.w.descendants(t.files)...) {
		entries, err := os.ReadDir(t.env.proc(pid, "task"))
		if err != nil {
			if i == 0 {
				return !isGone(err)
			}
			continue // exited meanwhile
		}
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		clear(t.process(n).fdKinds)
		alive[n] = true
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				tk := task{n, e.Name()}
				t.tasks = append(t.tasks, tk)
				live[tk] = true
			}
		}
	}
	for pid := range t.procs {
		if !alive[pid] {
			delete(t.procs, pid)
		}
	}
	t.files.keepIf(func(k heldKey) bool {
		tid, _, _ := strings.Cut(strings.TrimPrefix(k.name, "task/"), "/")
		return live[task{k.pid, tid}]
	})
	if t.cursor >= len(t.tasks) {
		t.cursor = 0
	}
	return true
}

// read takes one thread's state; false when the thread is gone.
func (t *ThreadStates) read(tk task) (threadStateKey, bool) {
	tid := tk.tid
	k := threadStateKey{pid: tk.pid, futexVal: -1}
	if p := t.procs[tk.pid]; p != nil {
		k.goVer = p.goVer
	}
	k.tid, _ = strconv.Atoi(tid)
	b, err := t.files.read(t.env, tk.pid, "task/"+tid+"/stat")
	if err != nil {
		return k, false
	}
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open || close+2 >= len(b) {
		return k, false
	}
	k.thread, k.state = string(b[open+1:close]), b[close+2]
	if k.state == 'Z' || k.state == 'X' {
		return k, false // exited
	}
	if k.state != 'S' && k.state != 'D' {
		return k, true
	}
	// The thread may wake between the reads: a wchan of 0 or a system
	// call "running" says it did, and it is then taken as running.
	wchan, err := t.files.read(t.env, tk.pid, "task/"+tid+"/wchan")
	if err != nil {
		return k, false
	}
	k.wchan = string(bytes.TrimSpace(wchan))
	if k.wchan == "0" || k.wchan == "" {
		k.state, k.wchan = 'R', ""
		return k, true
	}
	if t.syscallDenied {
		return k, true
	}
	sc, err := t.files.read(t.env, tk.pid, "task/"+tid+"/syscall")
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		t.syscallDenied = true
		t.mu.Lock()
		t.noSyscall = err
		t.mu.Unlock()
		return k, true
	}
	if err != nil {
		return k, false
	}
	f := strings.Fields(string(sc))
	switch {
	case len(f) == 0:
	case f[0] == "running":
		return threadStateKey{pid: k.pid, goVer: k.goVer, tid: k.tid, thread: k.thread, state: 'R', futexVal: -1}, true
	case f[0] == "-1":
		k.call = "" // in the kernel but not in a system call: a fault, an exception
	default:
		nr, err := strconv.Atoi(f[0])
		if err != nil {
			break
		}
		k.call = t.callName(nr)
		args := make([]uint64, 0, 6)
		for _, a := range f[1:min(len(f), 7)] {
			v, err := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 64)
			if err != nil {
				break
			}
			args = append(args, v)
		}
		t.callDetails(&k, args)
	}
	return k, true
}

func (t *ThreadStates) callName(nr int) string {
	if name, ok := t.calls[nr]; ok {
		return name
	}
	return "syscall_" + strconv.Itoa(nr)
}

// The futex operations (linux/futex.h) a thread waits in, by command.
var futexOps = map[uint64]string{0: "wait", 9: "wait_bitset", 6: "lock_pi", 13: "lock_pi2", 11: "wait_requeue_pi"}

// callDetails adds what a call's arguments say: the kind of descriptor
// it names, a futex wait's operation and expected value.
func (t *ThreadStates) callDetails(k *threadStateKey, args []uint64) {
	if len(args) == 0 {
		return
	}
	switch {
	case k.call == "futex" || k.call == "futex_time64":
		if len(args) < 3 {
			return
		}
		const cmdMask = 127 // the operation without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME
		if op, ok := futexOps[args[1]&cmdMask]; ok {
			k.futex = op
		} else {
			k.futex = "op_" + strconv.FormatUint(args[1]&cmdMask, 10)
		}
		// 0, 1 and 2 are the states of a lock word in the futex mutex
		// protocol (unlocked, locked, locked with waiters); other values
		// (condition counters) would make every reading a row of its own.
		if v := uint32(args[2]); v <= 2 {
			k.futexVal = int(v)
		}
	case fdCalls[k.call]:
		k.fd = t.fdKind(k.pid, int(int32(args[0])))
	}
}

// fdCalls are the system calls whose first argument is the descriptor
// they wait on.
var fdCalls = map[string]bool{
	"read": true, "write": true, "pread64": true, "pwrite64": true, "readv": true, "writev": true,
	"preadv": true, "pwritev": true, "preadv2": true, "pwritev2": true, "recvfrom": true, "recvmsg": true,
	"recvmmsg": true, "sendto": true, "sendmsg": true, "sendmmsg": true, "accept": true, "accept4": true,
	"connect": true, "fsync": true, "fdatasync": true, "sync_file_range": true, "ioctl": true, "flock": true,
	"fcntl": true, "sendfile": true, "splice": true, "fallocate": true, "ftruncate": true, "getdents64": true,
	"epoll_wait": true, "epoll_pwait": true, "epoll_pwait2": true,
}

// fdKind names what a descriptor is, from its /proc/PID/fd link: a
// socket, a pipe, a file, a device, an anonymous inode's kind
// (eventpoll, eventfd, timerfd...). Never a path: labels carry no names.
func (t *ThreadStates) fdKind(pid, fd int) string {
	p := t.procs[pid]
	if fd < 0 || p == nil {
		return ""
	}
	if kind, ok := p.fdKinds[fd]; ok {
		return kind
	}
	link, err := os.Readlink(t.env.proc(strconv.Itoa(pid), "fd", strconv.Itoa(fd)))
	kind := ""
	switch {
	case err != nil:
	case strings.HasPrefix(link, "socket:"):
		kind = "socket"
	case strings.HasPrefix(link, "pipe:"):
		kind = "pipe"
	case strings.HasPrefix(link, "anon_inode:"):
		kind = strings.Trim(strings.TrimPrefix(link, "anon_inode:"), "[]")
		if len(kind) > 32 {
			kind = kind[:32]
		}
	case strings.HasPrefix(link, "/dev/"):
		kind = "device"
	case strings.HasPrefix(link, "/"):
		kind = "file"
	default:
		kind = "other"
	}
	p.fdKinds[fd] = kind
	return kind
}

// add counts a reading (t.mu held).
func (t *ThreadStates) add(k threadStateKey, nanos float64) {
	c := t.agg[k]
	if c == nil && len(t.agg) >= maxThreadStateKeys {
		k.pid, k.goVer, k.tid, k.thread = 0, "", 0, ""
		if c = t.agg[k]; c == nil {
			k.wchan, k.call, k.fd, k.futex, k.futexVal = "", "", "", "", -1
			c = t.agg[k]
		}
	}
	if c == nil {
		c = &threadStateCount{}
		t.agg[k] = c
	}
	c.n++
	c.nanos += nanos
}

// profile makes the window's profile: a sample per row, its stack the
// kernel function the thread slept in (none for a running one), its labels
// the state, thread, system call, descriptor kind and futex operation.
func (t *ThreadStates) profile(agg map[threadStateKey]*threadStateCount, start, end time.Time) *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "thread_time", Unit: "nanoseconds"}},
		DefaultSampleType: "thread_time",
		PeriodType:        &profile.ValueType{Type: "thread_time", Unit: "nanoseconds"},
		Period:            t.interval.Nanoseconds(),
		TimeNanos:         start.UnixNano(),
		DurationNanos:     end.Sub(start).Nanoseconds(),
		Comments: []string{fmt.Sprintf("thread states of pid %d and its descendants sampled from /proc %d times a second, at most %d threads a time",
			t.pid, time.Second/t.interval, t.max)},
	}
	kernel := &profile.Mapping{ID: 1, File: symbolize.KernelMapping}
	p.Mapping = []*profile.Mapping{kernel}
	locs := map[string]*profile.Location{}
	keys := make([]threadStateKey, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b threadStateKey) int {
		return cmp.Or(cmp.Compare(a.pid, b.pid), strings.Compare(a.goVer, b.goVer), cmp.Compare(a.tid, b.tid), cmp.Compare(a.state, b.state), strings.Compare(a.wchan, b.wchan),
			strings.Compare(a.call, b.call), strings.Compare(a.fd, b.fd), strings.Compare(a.futex, b.futex),
			cmp.Compare(a.futexVal, b.futexVal), strings.Compare(a.thread, b.thread))
	})
	for _, k := range keys {
		c := agg[k]
		s := &profile.Sample{
			Value:    []int64{c.n, int64(c.nanos)},
			Label:    map[string][]string{"state": {string(k.state)}},
			NumLabel: map[string][]int64{"pid": {int64(k.pid)}},
		}
		if k.goVer != "" {
			s.Label[observation.ProfileLabelGo] = []string{k.goVer}
		}
		if k.tid != 0 {
			s.NumLabel["tid"] = []int64{int64(k.tid)}
			s.Label["thread"] = []string{k.thread}
		}
		for name, v := range map[string]string{"syscall": k.call, "fd": k.fd, "futex": k.futex} {
			if v != "" {
				s.Label[name] = []string{v}
			}
		}
		if k.futexVal >= 0 {
			// A string: pprof drops a numeric label of 0 when it decodes.
			s.Label["futex_val"] = []string{strconv.Itoa(k.futexVal)}
		}
		if k.wchan != "" {
			loc := locs[k.wchan]
			if loc == nil {
				fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: k.wchan, SystemName: k.wchan}
				p.Function = append(p.Function, fn)
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: kernel, Line: []profile.Line{{Function: fn}}}
				p.Location = append(p.Location, loc)
				locs[k.wchan] = loc
			}
			s.Location = []*profile.Location{loc}
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}
