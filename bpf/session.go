//go:build linux && amd64

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/perfhound/perfhound/bpf/symbolize"
)

// Session is a running set of collectors. Read drains what they gathered
// since the last Read; Close detaches and frees everything. The methods
// are safe for concurrent use.
type Session struct {
	opts Options

	mu      sync.Mutex // serialises Read and Close
	closed  bool
	objs    map[string]*ebpf.Collection
	shared  map[string]*ebpf.Map
	links   []link.Link
	sampler *perfSampler
	// samplerProg is the on-CPU program the sampler runs; frequency the
	// current epoch's sampling rate, nextFrequency the rate SetFrequency
	// asked for from the next epoch on (0: no change).
	samplerProg   *ebpf.Program
	frequency     int
	nextFrequency int
	epoch         uint32                // current stack epoch, mirrored in the epoch map
	parked        map[stackRef][]uint64 // stacks of older epochs that pending waits need
	taken         map[stackRef][]uint64 // stacks read out of the maps of the last two epochs (nil: not found)
	keepStacks    bool                  // the kernel cannot delete a stack as it reads it
	stackBuf      [maxStackDepth]uint64 // a stack map's value, read
	last          time.Time
	base          map[string]uint64 // counter totals at the last Read

	sym       *symbolize.Symbolizer
	symStats  symbolize.Stats // at the last Read
	watchMu   sync.Mutex
	watched   map[uint32]bool // processes whose mappings the symbolizer holds
	exited    []uint32        // watched processes gone since the last Read
	lifecycle *ringbuf.Reader
	misses    *ringbuf.Reader // unwind_misses: processes whose walks met code they were not described with
	missMu    sync.Mutex
	missed    map[uint32]*missBackoff // by tgid, until its exec or exit
	done      chan struct{}
	// lifecycleDone is waited for by Close, so that no goroutine of the
	// session outlives it. The delayed looks at a process (afterLook) run
	// under timersMu's read lock and return once timersClosed is set, which
	// Close sets under its write lock before freeing anything they use.
	lifecycleDone sync.WaitGroup
	timersMu      sync.RWMutex
	timersClosed  bool
	// unwind feeds the .eh_frame walker of the on-CPU, off-CPU and fault
	// programs (NativeUnwind); nil without it. unwindMu serialises it: processes are added from
	// Read and from the loader-delay timers.
	unwindMu sync.Mutex
	unwind   *unwinder
	// unwindErr is why NativeUnwind was asked for and is off.
	unwindErr error
}

// NativeUnwindError says why the session walks frame pointers only though
// Options.NativeUnwind asked for tables (a kernel without the walker's
// helpers), or nil.
func (s *Session) NativeUnwindError() error { return s.unwindErr }

// nativeUnwindSupport checks the helpers c/unwind.h's walker calls:
// bpf_loop (Linux 5.17) and bpf_task_pt_regs (5.15). They are probed in
// a perf_event program (cilium/ebpf cannot probe a tracing one's); a
// kernel that has them gives them to tracing programs too.
func nativeUnwindSupport() error {
	for _, h := range []asm.BuiltinFunc{asm.FnLoop, asm.FnTaskPtRegs} {
		if err := features.HaveProgramHelper(ebpf.PerfEvent, h); err != nil {
			return fmt.Errorf("the kernel's BPF programs cannot call %s (the walker needs Linux 5.17): %w", h, err)
		}
	}
	return nil
}

// symbolCacheBytes bounds the parsed binaries the symbolizer keeps: with
// the kernel's symbols (2 MiB) and the Go runtime, it keeps a session
// under the 50 MiB RSS the agent is allowed on a host running many
// different programs.
const symbolCacheBytes = 16 << 20

// Stack maps in rotation; must match GENERATIONS in c/stacks.h.
const generations = 3

// sharedMaps are created once and handed to every object that declares
// them, so that one pid filter and one set of stack maps serve all.
var sharedMaps = slices.Concat([]string{"target_pids", "target_cgroups", "epoch"}, stackMapNames[:], overflowMapNames[:],
	nativeMapNames[:], unwindSharedMaps[:])

// c/unwind.h's maps: the tables and process mappings the walkers of all
// collectors share, and each object's own per-CPU scratch (the on-CPU
// sampler may interrupt another program).
var (
	unwindSharedMaps = [...]string{"unwind_tables", "unwind_procs", "unwind_misses", "unwind_miss_last"}
	unwindScratchMap = "unwind_scratch"
)

// Start loads and attaches the chosen collectors.
func Start(opts Options) (*Session, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if caps, err := effectiveCaps(); err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	} else if !caps.has(capSysAdmin) && !(caps.has(capBPF) && caps.has(capPerfmon)) {
		return nil, fmt.Errorf("bpf: %w", ErrPrivileges)
	}
	var unwindErr error
	if opts.NativeUnwind {
		if unwindErr = nativeUnwindSupport(); unwindErr != nil {
			opts.NativeUnwind = false // frame pointers alone, rather than no stacks
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("bpf: raising RLIMIT_MEMLOCK: %w", err)
	}
	ensureTracefs() // best effort; see Probe

	s := &Session{
		opts:    opts,
		objs:    map[string]*ebpf.Collection{},
		shared:  map[string]*ebpf.Map{},
		base:    map[string]uint64{},
		watched: map[uint32]bool{},
		missed:  map[uint32]*missBackoff{},
		parked:  map[stackRef][]uint64{},
		taken:   map[stackRef][]uint64{},
		sym:     symbolize.New(symbolize.Options{ProcFS: opts.ProcFS, MaxObjectBytes: symbolCacheBytes}),
		done:    make(chan struct{}),

		unwindErr: unwindErr,
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	if opts.NativeUnwind && s.shared["unwind_procs"] != nil {
		s.unwind = newUnwinder(s.shared["unwind_tables"], s.shared["unwind_procs"], opts.UnwindTableBytes)
	}
	for _, pid := range opts.PIDs {
		s.watch(uint32(pid))
	}
	// Reading kallsyms takes the kernel about 50 ms: do it now rather
	// than in the first Read. Hidden symbols are reported by Probe and in
	// the symbolizer's stats; the kernel frames then stay unnamed.
	s.sym.LoadKernel()
	if err := s.attach(); err != nil {
		s.Close()
		return nil, err
	}
	// Loading parsed the kernel's BTF (tens of MiB, now garbage): give
	// it back rather than carry it as RSS for the session's life.
	debug.FreeOSMemory()
	s.last = time.Now()
	return s, nil
}

// objects lists the BPF objects the options need.
func (o Options) objects() []string {
	var names []string
	for _, c := range o.Collectors {
		names = append(names, string(c))
	}
	if o.has(OnCPU) || o.has(OffCPU) || o.has(PageFaults) || o.FollowChildren {
		names = append(names, "procs")
	}
	return names
}

func (s *Session) load() error {
	btfCache := takeKernelBTF()
	for _, name := range s.opts.objects() {
		spec, err := specLoaders[name]()
		if err != nil {
			return fmt.Errorf("bpf: %s: %w", name, err)
		}
		if err := s.configure(spec); err != nil {
			return fmt.Errorf("bpf: %s: %w", name, err)
		}
		replace := map[string]*ebpf.Map{}
		for _, m := range sharedMaps {
			ms, ok := spec.Maps[m]
			if !ok {
				continue
			}
			if s.shared[m] == nil {
				if s.shared[m], err = ebpf.NewMap(ms); err != nil {
					return fmt.Errorf("bpf: creating map %s: %w", m, err)
				}
			}
			replace[m] = s.shared[m]
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replace, Cache: btfCache})
		if err != nil {
			var verr *ebpf.VerifierError
			if errors.As(err, &verr) {
				return fmt.Errorf("bpf: loading %s: %+v", name, verr)
			}
			return fmt.Errorf("bpf: loading %s: %w", name, err)
		}
		s.objs[name] = coll
	}
	one := uint8(1)
	for _, pid := range s.opts.PIDs {
		if err := s.shared["target_pids"].Put(uint32(pid), one); err != nil {
			return fmt.Errorf("bpf: watching pid %d: %w", pid, err)
		}
	}
	for _, path := range s.opts.Cgroups {
		id, err := cgroupID(path)
		if err != nil {
			return err
		}
		if err := s.shared["target_cgroups"].Put(id, one); err != nil {
			return fmt.Errorf("bpf: watching cgroup %s: %w", path, err)
		}
	}
	return nil
}

// configure sets an object's load-time constants that it declares, and
// shrinks the walker's maps to one entry when it is off: its process
// list and walked stacks are preallocated, about 14 MiB of kernel memory.
func (s *Session) configure(spec *ebpf.CollectionSpec) error {
	if !s.opts.NativeUnwind {
		for _, name := range slices.Concat(unwindSharedMaps[:], nativeMapNames[:], []string{unwindScratchMap}) {
			if ms := spec.Maps[name]; ms != nil && ms.Type != ebpf.RingBuf { // a ring's size is pages
				ms.MaxEntries = 1
			}
		}
	}
	set := func(name string, v any) error {
		if vs, ok := spec.Variables[name]; ok {
			if err := vs.Set(v); err != nil {
				return fmt.Errorf("setting %s: %w", name, err)
			}
		}
		return nil
	}
	return errors.Join(
		set("filter_pids", len(s.opts.PIDs) > 0),
		set("filter_cgroups", len(s.opts.Cgroups) > 0),
		set("min_offcpu_ns", uint64(s.opts.MinOffCPU)),
		set("sample_every", uint32(s.opts.OffCPUSampling)),
		set("with_stacks", s.opts.FaultStacks),
		set("follow_children", s.opts.FollowChildren),
		set("native_unwind", s.opts.NativeUnwind),
	)
}

func (s *Session) attach() error {
	for _, name := range s.opts.objects() {
		coll := s.objs[name]
		for pname, prog := range coll.Programs {
			switch prog.Type() {
			case ebpf.PerfEvent:
				p, err := attachPerfSampler(prog, s.opts.Frequency)
				if err != nil {
					return fmt.Errorf("bpf: %w", err)
				}
				s.sampler, s.samplerProg, s.frequency = p, prog, s.opts.Frequency
			case ebpf.Tracing:
				l, err := link.AttachTracing(link.TracingOptions{Program: prog})
				if err != nil {
					return fmt.Errorf("bpf: attaching %s/%s: %w", name, pname, err)
				}
				s.links = append(s.links, l)
			default:
				return fmt.Errorf("bpf: %s/%s: unexpected program type %s", name, pname, prog.Type())
			}
		}
	}
	if s.unwind != nil && s.shared["unwind_misses"] != nil {
		rd, err := ringbuf.NewReader(s.shared["unwind_misses"])
		if err != nil {
			return fmt.Errorf("bpf: unwind misses: %w", err)
		}
		s.misses = rd
		s.lifecycleDone.Add(1)
		go func() {
			defer s.lifecycleDone.Done()
			s.followMisses()
		}()
	}
	if procs := s.objs["procs"]; procs != nil {
		rd, err := ringbuf.NewReader(procs.Maps["lifecycle_events"])
		if err != nil {
			return fmt.Errorf("bpf: process events: %w", err)
		}
		s.lifecycle = rd
		s.lifecycleDone.Add(1)
		go func() {
			defer s.lifecycleDone.Done()
			s.followLifecycle()
		}()
	}
	return nil
}

// followLifecycle snapshots the mappings of every watched process as it
// execs, while it is surely alive, and notes exits so that their
// snapshots are dropped once a window has used them.
func (s *Session) followLifecycle() {
	for {
		rec, err := s.lifecycle.Read()
		if err != nil {
			return // closed
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		tgid := binary.NativeEndian.Uint32(rec.RawSample[0:4])
		switch binary.NativeEndian.Uint32(rec.RawSample[4:8]) {
		case 0: // exec: a new image, whose mappings replace the old ones
			s.forgetMisses(tgid)
			s.rewatch(tgid)
			// The exec tracepoint fires before the dynamic loader maps
			// the shared libraries; look again once it has.
			s.rewatchAfter(tgid, loaderDelay)
		case 1:
			s.watchMu.Lock()
			if s.watched[tgid] {
				s.exited = append(s.exited, tgid)
			}
			s.watchMu.Unlock()
			// Its mappings go from the walker at once: a process that
			// reuses the pid must not be walked through them.
			s.removeUnwind(tgid)
			s.forgetMisses(tgid)
		case 2: // fork: a child that may never exec (a pre-forked worker)
			s.watchAfter(tgid, loaderDelay)
		}
	}
}

// followMisses describes a process again when the walker met code
// outside the mappings it was described with (c/unwind.h sends its tgid,
// at most every 50 ms): a library loaded by dlopen after the looks that
// follow its exec, the loader's libraries mapped before the first of
// them, JIT code. A look that finds the same mappings doubles the time
// before the process's next (missGap to maxMissGap), so that code that
// stays undescribed (JIT code in fresh anonymous memory is described,
// but a walk cut in code whose table could not be built is not) costs a
// look a minute at most.
func (s *Session) followMisses() {
	for {
		rec, err := s.misses.Read()
		if err != nil {
			return // closed
		}
		if len(rec.RawSample) < 16 {
			continue
		}
		tgid := binary.NativeEndian.Uint32(rec.RawSample[0:4])
		pc := binary.NativeEndian.Uint64(rec.RawSample[8:16])
		now := time.Now()
		s.missMu.Lock()
		b := s.missed[tgid]
		if b == nil {
			if len(s.missed) >= maxWatched {
				for pid, old := range s.missed { // forget those whose wait is over
					if now.After(old.next) {
						delete(s.missed, pid)
					}
				}
			}
			b = &missBackoff{gap: missGap}
			s.missed[tgid] = b
		}
		wait := now.Before(b.next)
		s.missMu.Unlock()
		if wait {
			continue
		}
		found := s.redescribe(tgid, pc)
		s.missMu.Lock()
		if found {
			b.gap = missGap
		} else {
			b.gap = min(2*b.gap, maxMissGap)
		}
		b.next = now.Add(b.gap)
		s.missMu.Unlock()
	}
}

// missBackoff is when a process may be looked at again for its misses.
type missBackoff struct {
	next time.Time
	gap  time.Duration
}

// forgetMisses drops a process's backoff at its exec or exit: a new
// image, or a pid reused, starts afresh.
func (s *Session) forgetMisses(tgid uint32) {
	s.missMu.Lock()
	delete(s.missed, tgid)
	s.missMu.Unlock()
}

// missGap and maxMissGap bound the time between two looks at a process
// its walks were cut in (followMisses).
const missGap, maxMissGap = 50 * time.Millisecond, time.Minute

// redescribe describes a process to the walker again, the object that
// holds pc (where a walk was cut) first, and says whether pc is now in a
// mapping it was described with; then, since the symbolizer will meet
// the new code's frames, has it take a fresh snapshot of the mappings.
func (s *Session) redescribe(tgid uint32, pc uint64) bool {
	select {
	case <-s.done:
		return false // closing: Close waits for this goroutine
	default:
	}
	s.unwindMu.Lock()
	_, _, found, _ := s.unwind.addProcessAt(int(tgid), pc)
	s.unwindMu.Unlock()
	if found {
		s.sym.Watch(int(tgid)) // gone meanwhile: its frames are counted unknown
	}
	return found
}

// Follow adds processes to a session that watches PIDs with
// FollowChildren: a watched process's descendants forked before the
// session started (a pre-fork server's workers, a shell's running
// command), which the fork tracepoint could not tell it of. Listed after
// Start, which attached that tracepoint, no fork falls between the two.
// A pid gone meanwhile costs a map entry until the session ends.
func (s *Session) Follow(pids []int) error {
	if len(s.opts.PIDs) == 0 || !s.opts.FollowChildren {
		return errors.New("bpf: Follow needs a session that watches PIDs and follows their children")
	}
	one := uint8(1)
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if err := s.shared["target_pids"].Put(uint32(pid), one); err != nil {
			return fmt.Errorf("bpf: following pid %d: %w", pid, err)
		}
		s.watch(uint32(pid))
	}
	return nil
}

// watch has the symbolizer snapshot a process's mappings once. A process
// already gone is left to the symbolizer's accounting of unknown frames.
func (s *Session) watch(tgid uint32) {
	s.watchMu.Lock()
	if s.watched[tgid] || len(s.watched) >= maxWatched {
		s.watchMu.Unlock()
		return
	}
	s.watched[tgid] = true
	s.watchMu.Unlock()
	if err := s.sym.Watch(int(tgid)); err != nil {
		// Gone (or unreadable): not held, so that a process reusing the
		// pid is watched when it is met.
		s.watchMu.Lock()
		delete(s.watched, tgid)
		s.watchMu.Unlock()
		return
	}
	s.addUnwind(tgid)
}

// removeUnwind forgets an exited process's mappings in the walker.
func (s *Session) removeUnwind(tgid uint32) {
	if s.unwind == nil {
		return
	}
	s.unwindMu.Lock()
	defer s.unwindMu.Unlock()
	s.unwind.procs.Delete(tgid)
}

// addUnwind describes a process's mappings to the .eh_frame walker, when
// the session walks by tables. A process gone meanwhile is skipped.
func (s *Session) addUnwind(tgid uint32) {
	if s.unwind == nil {
		return
	}
	s.unwindMu.Lock()
	defer s.unwindMu.Unlock()
	s.unwind.addProcess(int(tgid))
}

// rewatch takes a fresh snapshot of a process's mappings, and says
// whether the process was there to take it. A snapshot is replaced only by
// one that could be taken, and stays marked watched so that the process's
// exit drops it.
func (s *Session) rewatch(tgid uint32) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.watchMu.Lock()
	known := s.watched[tgid]
	if !known && len(s.watched) >= maxWatched {
		s.watchMu.Unlock()
		return false
	}
	s.watched[tgid] = true
	s.watchMu.Unlock()
	// The walker first: its threads are being walked now, where the
	// symbolizer's snapshot (which reads symbol tables, tens of
	// milliseconds on a busy machine) is needed at the window's end.
	s.addUnwind(tgid)
	if err := s.sym.Watch(int(tgid)); err != nil {
		if !known {
			s.watchMu.Lock()
			delete(s.watched, tgid)
			s.watchMu.Unlock()
		}
		return false
	}
	return true
}

// rewatchAfter takes fresh snapshots of a process's mappings after wait,
// then four times longer each time, up to maxLoaderDelay, while it lives:
// its loader may be starved of CPU on a busy machine and map the libraries
// late (a snapshot is replaced only by one that could be taken).
func (s *Session) rewatchAfter(tgid uint32, wait time.Duration) {
	s.afterLook(wait, func() {
		if s.rewatch(tgid) && wait < maxLoaderDelay {
			s.rewatchAfter(tgid, 4*wait)
		}
	})
}

// watchAfter watches a forked child after a while, unless it is watched by
// then: most children exec at once (a shell's), and their exec's event
// watches them; one that does not is a worker running its parent's code,
// read while it is alive, since it may exit before the window ends
// (stress-ng's, a pre-fork server's).
func (s *Session) watchAfter(tgid uint32, wait time.Duration) {
	s.afterLook(wait, func() { s.watch(tgid) })
}

// afterLook runs look after wait, unless the session is closed by then; a
// look that has begun holds Close back until it ends.
func (s *Session) afterLook(wait time.Duration, look func()) {
	time.AfterFunc(wait, func() {
		s.timersMu.RLock()
		defer s.timersMu.RUnlock()
		if !s.timersClosed {
			look()
		}
	})
}

// loaderDelay is how long after exec the dynamic loader is taken to have
// mapped a program's libraries, at first; maxLoaderDelay the longest wait
// (50 ms, 200 ms, 800 ms, 3.2 s, 12.8 s). Processes that die before a look
// after their loader keep only the frames of what was mapped before.
const loaderDelay, maxLoaderDelay = 50 * time.Millisecond, 12800 * time.Millisecond

// maxWatched bounds the processes whose snapshots we track, as the
// symbolizer bounds what it keeps.
const maxWatched = 8192

// Close detaches every program and frees every map. It is safe to call
// more than once.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.sampler != nil {
		errs = append(errs, s.sampler.Close())
	}
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	close(s.done)
	s.timersMu.Lock()
	s.timersClosed = true
	s.timersMu.Unlock()
	if s.lifecycle != nil {
		errs = append(errs, s.lifecycle.Close())
	}
	if s.misses != nil {
		errs = append(errs, s.misses.Close())
	}
	s.lifecycleDone.Wait()
	for _, c := range s.objs {
		c.Close()
	}
	for _, m := range s.shared {
		errs = append(errs, m.Close())
	}
	errs = append(errs, s.sym.Close())
	return errors.Join(errs...)
}

// SetFrequency changes the on-CPU sampling rate from the next window on:
// the next Read returns the window sampled at the current rate and
// starts the next at hz. The agent samples a freshly deployed version
// faster for its first minutes, where the regression detector needs
// the samples most. Each window's profile states its period, so
// windows at different rates compare as CPU time.
func (s *Session) SetFrequency(hz int) error {
	if hz < 1 || hz > maxFrequency {
		return fmt.Errorf("bpf: sampling frequency %d Hz out of range 1..%d", hz, maxFrequency)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.nextFrequency = hz
	return nil
}

// Frequency is the on-CPU sampling rate of the window in progress, in
// Hz; 0 without on-CPU sampling.
func (s *Session) Frequency() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frequency
}

// switchFrequency starts sampling at the rate SetFrequency asked for:
// Read calls it just before the epoch moves on. The new events are
// opened before the old ones are closed, so for the few microseconds
// until the epoch moves both rates sample, and what they take lands in
// the ending epoch at its old period: a sample or two on a busy host.
// When the new events cannot be opened, sampling goes on at the old rate
// and err says why.
func (s *Session) switchFrequency() error {
	next := s.nextFrequency
	s.nextFrequency = 0
	if next == 0 || next == s.frequency || s.sampler == nil {
		return nil
	}
	p, err := attachPerfSampler(s.samplerProg, next)
	if err != nil {
		return fmt.Errorf("bpf: sampling at %d Hz: %w", next, err)
	}
	s.sampler.Close()
	s.sampler, s.frequency = p, next
	return nil
}

// watching is the number of processes whose mappings are held.
func (s *Session) watching() int {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return len(s.watched)
}

// ProgramStats returns the running totals of every loaded program.
func (s *Session) ProgramStats() ([]ProgramStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []ProgramStats
	for obj, coll := range s.objs {
		for name, p := range coll.Programs {
			st, err := p.Stats()
			if err != nil {
				return nil, fmt.Errorf("bpf: stats of %s/%s: %w", obj, name, err)
			}
			out = append(out, ProgramStats{Name: obj + "/" + name, Runtime: st.Runtime, RunCount: st.RunCount, Misses: st.RecursionMisses})
		}
	}
	return out, nil
}

// cgroupID returns the id the kernel gives a cgroup v2 directory: its
// inode number, which is what bpf_get_current_cgroup_id returns.
func cgroupID(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bpf: cgroup: %w", err)
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("bpf: cgroup %s is not a directory", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("bpf: cgroup %s: no inode number", path)
	}
	return st.Ino, nil
}
