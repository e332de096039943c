package verdict

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf/symbolize"
)

// Mappings as the eBPF profiles of fixtures/observations name them.
var (
	kernelMap = &profile.Mapping{ID: 1, File: "[kernel.kallsyms]"}
	bpfMap    = &profile.Mapping{ID: 2, File: "[bpf]"}
	libcMap   = &profile.Mapping{ID: 3, File: "/usr/lib/x86_64-linux-gnu/libc.so.6"}
	progMap   = &profile.Mapping{ID: 4, File: "/tmp/tmp.sX4OBMnVDJ/cwork"}
	jitMap    = &profile.Mapping{ID: 5, File: symbolize.AnonMapping}
)

// stack builds a sample from frame names, leaf first, as the eBPF
// profiles hold them: "k:" marks a kernel frame, "c:" a frame in libc,
// "b:" one in a BPF program, "[libc.so.6]" a libc address without a
// symbol; the rest are the program's own.
func stack(names ...string) *profile.Sample {
	s := &profile.Sample{}
	for i, n := range names {
		l := &profile.Location{ID: uint64(i + 1), Mapping: progMap}
		switch {
		case strings.HasPrefix(n, "k:"):
			l.Mapping, n = kernelMap, n[2:]
		case strings.HasPrefix(n, "c:"):
			l.Mapping, n = libcMap, n[2:]
		case strings.HasPrefix(n, "b:"):
			l.Mapping, n = bpfMap, n[2:]
		case n == "[libc.so.6]":
			l.Mapping, n = libcMap, ""
		case n == "[jit]":
			l.Mapping, n = jitMap, ""
		}
		if n != "" {
			l.Line = []profile.Line{{Function: &profile.Function{ID: uint64(i + 1), Name: n}}}
		}
		s.Location = append(s.Location, l)
	}
	return s
}

// Real stacks from fixtures/observations (go tool pprof -traces), some
// shortened at the root.
var (
	goIdleFutex = []string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait", "k:do_futex",
		"k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"runtime.futex", "runtime.notesleep", "runtime.stopm", "runtime.findRunnable", "runtime.schedule", "runtime.park_m", "runtime.mcall"}
	goRuntimeLockFutex = []string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait", "k:do_futex",
		"k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"runtime.futex", "runtime.semasleep", "runtime.lock2", "runtime.selectgo", "main.main", "runtime.main", "runtime.goexit"}
	sysmonLock = []string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait", "k:do_futex",
		"k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"runtime.futex", "runtime.semasleep", "runtime.lock2", "runtime.sysmon", "runtime.mstart1", "runtime.mstart0", "runtime.mstart"}
	goFsyncWait = []string{"k:__schedule", "k:schedule", "k:io_schedule", "k:bit_wait_io", "k:__wait_on_bit",
		"k:out_of_line_wait_on_bit", "k:__sync_dirty_buffer", "k:ext4_write_inode", "k:__writeback_single_inode",
		"k:writeback_single_inode", "k:sync_inode_metadata", "k:generic_buffers_fsync_noflush",
		"k:ext4_fsync_nojournal.constprop.0", "k:ext4_sync_file", "k:do_fsync", "k:__x64_sys_fsync", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "internal/runtime/syscall/linux.Syscall6", "syscall.Syscall", "syscall.Fsync",
		"internal/poll.(*FD).Fsync", "os.(*File).Sync", "main.fsyncLoop", "main.main", "runtime.main", "runtime.goexit"}
	cMutexFutex = []string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait", "k:do_futex",
		"k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:pthread_mutex_lock", "contend", "[libc.so.6]"}
	cMutexWake = []string{"k:futex_wake", "k:do_futex", "k:__x64_sys_futex", "k:x64_sys_call", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "c:pthread_mutex_unlock", "contend", "[libc.so.6]"}
	cRecv = []string{"k:__schedule", "k:schedule", "k:schedule_timeout", "k:wait_woken", "k:sk_wait_data",
		"k:tcp_recvmsg_locked", "k:tcp_recvmsg", "k:sock_recvmsg", "k:__sys_recvfrom",
		"k:__x64_sys_recvfrom", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:recv", "main", "[libc.so.6]"}
	cSend = []string{"k:tcp_sendmsg_locked", "k:tcp_sendmsg", "k:sock_write_iter", "k:vfs_write", "k:ksys_write",
		"k:x64_sys_call", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:write", "main", "[libc.so.6]"}
	cPoll = []string{"k:__schedule", "k:schedule", "k:schedule_hrtimeout_range_clock", "k:poll_schedule_timeout.constprop.0",
		"k:do_sys_poll", "k:__x64_sys_poll", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"c:__poll", "poll_client", "[libc.so.6]"}
	goNanosleep = []string{"k:__schedule", "k:schedule", "k:do_nanosleep", "k:hrtimer_nanosleep",
		"k:__x64_sys_nanosleep", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "runtime.usleep", "runtime.sysmon",
		"runtime.mstart1", "runtime.mstart0", "runtime.mstart"}
	cNanosleep = []string{"k:__schedule", "k:schedule", "k:do_nanosleep", "k:hrtimer_nanosleep",
		"k:__x64_sys_nanosleep", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:clock_nanosleep", "main", "[libc.so.6]"}
	goFault = []string{"k:__schedule", "k:schedule", "k:io_schedule", "k:__handle_mm_fault", "k:handle_mm_fault",
		"k:exc_page_fault", "k:asm_exc_page_fault", "runtime.memclrNoHeapPointers", "runtime.mallocgcLarge", "runtime.mallocgc", "main.leak"}
	goGCOnCPU = []string{"k:_raw_spin_unlock_irqrestore", "k:do_send_sig_info", "k:do_send_specific", "k:__x64_sys_tgkill",
		"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "runtime.tgkill", "runtime.suspendG", "runtime.markroot.func1",
		"runtime.markroot", "runtime.gcDrain", "runtime.gcBgMarkWorker.func2", "runtime.systemstack", "runtime.gcBgMarkWorker",
		"runtime.goexit"}
	goMallocStack = []string{"runtime.mallocgcSmallScanNoHeader", "runtime.mallocgc", "runtime.newobject", "main.churn", "main.main",
		"runtime.main", "runtime.goexit"}
	goMutexHandoff = []string{"runtime.futex", "runtime.futexwakeup", "runtime.semrelease1", "internal/sync.runtime_Semrelease",
		"internal/sync.(*Mutex).unlockSlow", "internal/sync.(*Mutex).Unlock", "sync.(*Mutex).Unlock", "main.contend"}
	goFutexWake = []string{"k:futex_wake", "k:do_futex", "k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"runtime.futex", "runtime.futexwakeup", "runtime.notewakeup", "runtime.startm", "runtime.wakep"}
	blkSoftirq = []string{"k:blk_update_request", "k:blk_mq_end_request", "k:blk_done_softirq", "k:handle_softirqs",
		"k:__irq_exit_rcu", "k:common_interrupt", "k:asm_common_interrupt", "main.churn"}
	// From fixtures/observations/memory-c-mmap and contention-c-hammer.
	cMunmap = []string{"k:pvm_flush_tlb_multi", "k:flush_tlb_mm_range", "k:tlb_flush_mmu_tlbonly", "k:tlb_finish_mmu",
		"k:vms_clear_ptes", "k:vms_complete_munmap_vmas", "k:do_vmi_align_munmap", "k:do_vmi_munmap", "k:__vm_munmap",
		"k:__x64_sys_munmap", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:__munmap", "start_thread"}
	cMprotect = []string{"k:mas_walk", "k:mas_find", "k:do_mprotect_pkey", "k:__x64_sys_mprotect", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "c:__mprotect", "start_thread"}
	cMutexPreempted = []string{"k:__schedule", "k:schedule", "k:irqentry_exit_to_user_mode",
		"k:asm_sysvec_apic_timer_interrupt", "c:pthread_mutex_lock@@GLIBC_2.2.5", "start_thread"}
	cHolderPreempted = []string{"k:__schedule", "k:schedule", "k:irqentry_exit_to_user_mode",
		"k:asm_sysvec_apic_timer_interrupt", "hammer", "start_thread"}
	cLockWaitRunnable = []string{"k:__schedule", "k:schedule", "k:futex_do_wait", "k:__futex_wait", "k:futex_wait",
		"k:do_futex", "k:__x64_sys_futex", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:__lll_lock_wait",
		"start_thread"}
	// Stacks no recorded workload has (TestKernelWorkByResource), of
	// kernel 6.18's /proc/kallsyms names: a write that reclaims, a
	// contended inode lock, a stat and a socket option.
	cWriteReclaim = []string{"k:shrink_folio_list", "k:shrink_lruvec", "k:shrink_node", "k:do_try_to_free_pages",
		"k:try_to_free_pages", "k:__alloc_frozen_pages_noprof", "k:filemap_alloc_folio_noprof",
		"k:__filemap_get_folio", "k:ext4_write_begin", "k:generic_perform_write", "k:ext4_buffered_write_iter",
		"k:vfs_write", "k:ksys_write", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:write", "main"}
	cInodeLock = []string{"k:osq_lock", "k:rwsem_down_write_slowpath", "k:down_write",
		"k:ext4_buffered_write_iter", "k:vfs_write", "k:ksys_write", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"c:write", "main"}
	cStat = []string{"k:path_lookupat", "k:filename_lookup", "k:vfs_statx", "k:vfs_fstatat", "k:__do_sys_newlstat",
		"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:lstat64", "main"}
	cSetsockopt = []string{"k:do_tcp_setsockopt", "k:do_sock_setsockopt", "k:__sys_setsockopt", "k:__x64_sys_setsockopt",
		"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:setsockopt", "main"}
	ipi = []string{"k:x2apic_send_IPI", "k:smp_call_function_many_cond", "k:on_each_cpu_cond_mask", "k:flush_tlb_mm_range",
		"k:tlb_flush_mmu_tlbonly", "k:tlb_finish_mmu", "k:do_madvise", "k:__x64_sys_madvise", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "runtime.madvise", "runtime.sysUnusedOS"}
)

type onCPUCase struct {
	name     string
	stack    []string
	category string
	class    Class
}

var onCPUCases = []onCPUCase{
	{"GC with a syscall below", goGCOnCPU, OnCPUGC, ClassMemory},
	{"mallocgc", goMallocStack, OnCPUAlloc, ClassMemory},
	{"mallocgcLarge is mallocgc's", []string{"runtime.mallocgcLarge", "main.leak"}, OnCPUAlloc, ClassMemory},
	{"C malloc", []string{"c:malloc", "main"}, OnCPUAlloc, ClassMemory},
	{"glibc internals, a clone", []string{"c:_int_malloc.constprop.0", "c:malloc", "main"}, OnCPUAlloc, ClassMemory},
	{"malloc_usable_size is not an allocator", []string{"c:malloc_usable_size", "main"}, OnCPUUser, ClassCPU},
	{"C++ new", []string{"c:operator new(unsigned long)", "main"}, OnCPUAlloc, ClassMemory},
	{"__libc_write in user space", []string{"c:__libc_write", "main"}, OnCPUUser, ClassCPU},
	{"the return from mprotect in its C stub", []string{"c:__mprotect", "start_thread"}, OnCPUUser, ClassMemory},
	{"the return from munmap in its C stub", []string{"c:__munmap", "start_thread"}, OnCPUUser, ClassMemory},
	{"page fault", append(goFault[3:8:8], "main.leak"), OnCPUPageFault, ClassMemory},
	{"write to a socket", cSend, OnCPUSyscall, ClassNetwork},
	{"fsync on CPU", goFsyncWait[8:], OnCPUSyscall, ClassIO},
	{"C futex wake under a mutex", cMutexWake, OnCPUSyscall, ClassContention},
	{"Go runtime futex wake", goFutexWake, OnCPUSyscall, ClassCPU},
	{"Go mutex handoff in user space", goMutexHandoff, OnCPUUser, ClassContention},
	{"block softirq", blkSoftirq, OnCPUKernel, ClassIO},
	{"the Go scavenger's madvise, its TLB shootdown", ipi, OnCPUSyscall, ClassMemory},
	{"munmap's TLB shootdown", cMunmap, OnCPUSyscall, ClassMemory},
	{"mprotect", cMprotect, OnCPUSyscall, ClassMemory},
	{"mmap, its entry tail-called away", []string{"k:mas_update_gap.part.0", "k:mas_wr_node_store", "k:mas_store_prealloc",
		"k:__mmap_region", "k:do_mmap", "k:vm_mmap_pgoff", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe", "c:__mmap",
		"start_thread"}, OnCPUSyscall, ClassMemory},
	{"IPI without a syscall", ipi[:3], OnCPUKernel, ClassCPU},
	{"leaf in a BPF program", append([]string{"b:bpf_prog_1"}, ipi...), OnCPUUser, ClassCPU},
	{"no frames", nil, OnCPUUser, ClassCPU},
}

var offCPUCases = []struct {
	name, state string
	stack       []string
	wait        string
}{
	{"runnable", "R", goIdleFutex, WaitRunQueue},
	{"idle kernel thread", "I", []string{"k:__schedule", "k:schedule", "k:worker_thread"}, WaitIdle},
	{"parked", "P", nil, WaitIdle},
	{"page fault on I/O", "D", goFault, WaitFault},
	{"fsync", "D", goFsyncWait, WaitDisk},
	{"D elsewhere", "D", []string{"k:__schedule", "k:schedule", "k:schedule_timeout", "k:msleep"}, WaitOther},
	{"the mm lock, for an mmap (memory-c-mmap)", "D", []string{"k:__schedule", "k:schedule", "k:schedule_preempt_disabled",
		"k:rwsem_down_write_slowpath", "k:down_write_killable", "k:vm_mmap_pgoff", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "c:__mmap", "start_thread"}, WaitLock},
	{"Go idle M", "S", goIdleFutex, WaitIdle},
	{"Go runtime lock", "S", goRuntimeLockFutex, WaitLock},
	{"sysmon under the runtime's lock", "S", sysmonLock, WaitIdle},
	{"sysmon's usleep", "S", goNanosleep, WaitIdle},
	{"C mutex", "S", cMutexFutex, WaitLock},
	{"socket receive", "S", cRecv, WaitNetwork},
	{"poll", "S", cPoll, WaitPoll},
	{"C nanosleep", "S", cNanosleep, WaitSleep},
	{"sched_yield", "S", []string{"k:__schedule", "k:schedule", "k:__do_sys_sched_yield", "k:do_syscall_64"}, WaitOther},
	{"no state", "", cMutexFutex, WaitLock},
}

// kernelWorkCases are kernel work that counts towards the resource it
// serves, from stacks no recorded workload has (so TestFrameNamesAreRecorded
// does not read them): reclaim in a write is memory, a spinning lock
// contention, a stat io, a socket option network.
var kernelWorkCases = []onCPUCase{
	{"direct reclaim in a write", cWriteReclaim, OnCPUSyscall, ClassMemory},
	{"a write spinning on its inode's lock", cInodeLock, OnCPUSyscall, ClassContention},
	{"a stat", cStat, OnCPUSyscall, ClassIO},
	{"a socket option", cSetsockopt, OnCPUSyscall, ClassNetwork},
}

// TestClassifyFrames pins how stacks of real frame names are classified:
// on-CPU category and class, off-CPU wait, the lock share of a futex wait.
func TestClassifyFrames(t *testing.T) {
	for _, c := range slices.Concat(onCPUCases, kernelWorkCases) {
		s := stack(c.stack...)
		cat := classifyOnCPU(s)
		if cat != c.category {
			t.Errorf("%s: on-CPU category %s, want %s", c.name, cat, c.category)
		}
		if class := onCPUClass(cat, frames(s)); class != c.class {
			t.Errorf("%s: on-CPU class %s, want %s", c.name, class, c.class)
		}
	}

	for _, c := range offCPUCases {
		if w := classifyWait(c.state, frames(stack(c.stack...))); w != c.wait {
			t.Errorf("%s: wait %s, want %s", c.name, w, c.wait)
		}
	}

	// A wait for a CPU is the lock's when a lock handoff caused it.
	for _, c := range []struct {
		name  string
		stack []string
		class Class
	}{
		{"preempted taking a C mutex", cMutexPreempted, ClassContention},
		{"runnable again in the futex wait of a C mutex", cLockWaitRunnable, ClassContention},
		{"the waker of a C mutex", cMutexWake, ClassContention},
		{"runnable again in a futex wait that names no lock", cMutexFutex[:9], ClassCPU},
		{"preempted holding it (no lock frame)", cHolderPreempted, ClassCPU},
		{"the Go runtime waking a thread", goFutexWake, ClassCPU},
	} {
		fns := frames(stack(c.stack...))
		if class := waitClassOf(WaitRunQueue, fns); class != c.class {
			t.Errorf("%s: run-queue class %s, want %s", c.name, class, c.class)
		}
	}

	// A futex wait is contention when the stack shows a C mutex, or in a
	// Go process when it is under the runtime's own lock.
	goPK := parking{{pid: 7}: goProcess}
	shares := []struct {
		name  string
		pk    parking
		stack []string
		share float64
	}{
		{"C mutex", parking{}, cMutexFutex, 1},
		{"C mutex in a Go process", goPK, cMutexFutex, 1},
		{"Go runtime lock", goPK, goRuntimeLockFutex, 1},
		{"sysmon under the runtime's lock", goPK, sysmonLock, 1},
		{"Go idle futex", goPK, goIdleFutex, 0},
		{"unknown thread", parking{}, goIdleFutex, 1},
	}
	for _, c := range shares {
		s := stack(c.stack...)
		s.NumLabel = map[string][]int64{"pid": {7}, "tid": {8}}
		if got := c.pk.lockShare(s, frames(s)); got != c.share {
			t.Errorf("%s: lock share %v, want %v", c.name, got, c.share)
		}
	}
}

// TestJITMapping: the verdict reads JIT code by the mapping name the
// symbolizer gives it (the analyzer does not import the kernel side).
func TestJITMapping(t *testing.T) {
	if jitMapping != symbolize.AnonMapping {
		t.Errorf("jitMapping %q, bpf/symbolize names it %q", jitMapping, symbolize.AnonMapping)
	}
}

// TestFrameNaming pins the names the priorities give stacks: the system
// call, the code that made it, what is the program's own.
func TestFrameNaming(t *testing.T) {
	for _, c := range []struct {
		stack   []string
		syscall string
		caller  string
		leaf    string
	}{
		{goFsyncWait, "fsync", "main.fsyncLoop", "internal/runtime/syscall/linux.Syscall6"},
		{cSend, "write", "main", "write"},
		{cRecv, "recvfrom", "main", "recv"},
		{goFault, "page fault", "main.leak", "runtime.memclrNoHeapPointers"},
		{ipi, "madvise", "the Go runtime", "runtime.madvise"},
		{goIdleFutex, "futex", "the Go runtime", "runtime.futex"},
		{[]string{"k:__schedule", "k:__do_sys_sched_yield"}, "sched_yield", "[unknown]", "[unknown]"},
		{[]string{"k:__schedule", "k:schedule", "k:do_nanosleep", "[libc.so.6]"}, "", "[libc.so.6]", "[unknown]"},
		{goMallocStack, "", "main.churn", "runtime.mallocgcSmallScanNoHeader"},
		// A JVM thread waking a lock's waiter from JIT-compiled code, its
		// walk cut there (no table, no frame pointer): the JIT code is the
		// program's, and the hot loop of a JIT'd method is too.
		{[]string{"k:__schedule", "k:do_syscall_64", "c:__lll_lock_wake", "c:__pthread_mutex_unlock_usercnt", "[jit]"}, "", JITCode, "__lll_lock_wake"},
		{[]string{"k:asm_sysvec_apic_timer_interrupt", "[jit]", "[jit]"}, "", JITCode, JITCode},
	} {
		s := stack(c.stack...)
		if got := syscallOf(frames(s)); got != c.syscall {
			t.Errorf("syscallOf(%v) = %q, want %q", c.stack, got, c.syscall)
		}
		if got := callerOutside(s, ""); got.name != c.caller || got.inRuntime != (c.caller == "the Go runtime") {
			t.Errorf("callerOutside(%v) = %+v; want %q", c.stack, got, c.caller)
		}
		if got := leafUserFunction(s); got != c.leaf {
			t.Errorf("leafUserFunction(%v) = %q, want %q", c.stack, got, c.leaf)
		}
	}
	if got := callerOutside(stack(goMallocStack...), "main."); got != (caller{name: "the Go runtime", inRuntime: true}) {
		t.Errorf("callerOutside(mallocgc, skipping main.) = %+v; want the Go runtime, in the runtime", got)
	}

	for _, c := range []struct {
		fn                     string
		wrapper, plumbing, lib bool
	}{
		{"syscall.Syscall", true, true, false},
		{"internal/runtime/syscall/linux.Syscall6", true, true, true},
		{"golang.org/x/sys/unix.Syscall", true, false, false},
		{"internal/poll.(*FD).Fsync", false, true, true},
		{"os.(*File).Sync", false, true, false},
		{"net.(*conn).Read", false, true, false},
		{"net/http.(*conn).serve", false, false, true},
		{"sync.(*Mutex).Lock", false, true, false},
		{"internal/sync.(*Mutex).lockSlow", false, true, true},
		{"runtime.futex", false, true, false},
		{"crypto/sha256.block", false, false, true},
		{"compress/flate.(*compressor).deflate", false, false, true},
		{"main.fsyncLoop", false, false, false},
		{"github.com/klauspost/compress/zstd.(*Encoder).EncodeAll", false, false, false},
		{"expandAVX512_60", false, false, false},
		{"pthread_mutex_lock", false, false, false},
		{"JS:*hot /app/x.js:1:17", false, false, false},
		{"slices.SortFunc[go.shape.struct { Name string }]", false, false, false},
		{"encoding/json.Unmarshal", false, false, true},
	} {
		if got := isSyscallWrapper(c.fn); got != c.wrapper {
			t.Errorf("isSyscallWrapper(%q) = %v", c.fn, got)
		}
		if got := isGoPlumbing(c.fn); got != c.plumbing {
			t.Errorf("isGoPlumbing(%q) = %v", c.fn, got)
		}
		if got := isLibrary(c.fn); got != c.lib {
			t.Errorf("isLibrary(%q) = %v", c.fn, got)
		}
	}

	for file, want := range map[string]bool{
		"/usr/lib/x86_64-linux-gnu/libc.so.6": true, "/lib/x86_64-linux-gnu/libc-2.31.so": true,
		"/lib/x86_64-linux-gnu/libpthread.so.0": true, "/lib64/ld-linux-x86-64.so.2": true, "/lib/ld-musl-x86_64.so.1": true,
		"[vdso]": true, "[kernel.kallsyms]": true, "[bpf]": true,
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6": false, "/tmp/tmp.sX4OBMnVDJ/cwork": false, "": false,
	} {
		if got := isSystemObject(file); got != want {
			t.Errorf("isSystemObject(%q) = %v", file, got)
		}
	}
}

var goroutineParked = []string{"runtime.gopark", "runtime.goparkunlock"}

var goroutineCases = []struct {
	name  string
	stack []string
	state string
	lock  bool
}{
	{"sync.Mutex", append(goroutineParked, "runtime.semacquire1", "internal/sync.runtime_SemacquireMutex",
		"internal/sync.(*Mutex).lockSlow", "internal/sync.(*Mutex).Lock", "sync.(*Mutex).Lock", "main.contend.func1"), GoroutineLock, true},
	{"Go 1.23's sync.Mutex", append(goroutineParked, "runtime.semacquire1", "sync.runtime_SemacquireMutex", "sync.(*Mutex).lockSlow",
		"sync.(*Mutex).Lock", "main.contend.func1"), GoroutineLock, true},
	{"RWMutex", append(goroutineParked, "runtime.semacquire1", "sync.runtime_SemacquireRWMutexR", "sync.(*RWMutex).RLock", "main.read"), GoroutineLock, true},
	{"block profile's Lock", []string{"sync.(*Mutex).Lock", "main.contend.func1"}, GoroutineRunning, true},
	{"unlock handoff", []string{"internal/sync.(*Mutex).unlockSlow", "internal/sync.(*Mutex).Unlock", "sync.(*Mutex).Unlock",
		"main.contend.func1"}, GoroutineRunning, false},
	{"WaitGroup", append(goroutineParked, "runtime.semacquire1", "sync.runtime_SemacquireWaitGroup", "sync.(*WaitGroup).Wait", "main.main"), GoroutineWaitGroup, false},
	{"Cond", append(goroutineParked, "sync.runtime_notifyListWait", "sync.(*Cond).Wait", "main.worker"), GoroutineCond, false},
	{"netpoll", []string{"runtime.gopark", "runtime.netpollblock", "internal/poll.runtime_pollWait", "internal/poll.(*pollDesc).wait",
		"internal/poll.(*pollDesc).waitRead", "internal/poll.(*FD).Read", "net.(*netFD).Read", "net.(*conn).Read"}, GoroutineNetpoll, false},
	{"sleep", append(goroutineParked, "time.Sleep", "main.sleepLoop"), GoroutineSleep, false},
	{"select", append(goroutineParked, "runtime.selectgo", "net/http/pprof.sleep", "net/http/pprof.Profile"), GoroutineChannel, false},
	{"chanrecv", append(goroutineParked, "runtime.chanrecv", "runtime.chanrecv1", "main.main"), GoroutineChannel, false},
	{"select {}", append(goroutineParked, "runtime.block", "main.main"), GoroutineChannel, false},
	{"GC worker", append(goroutineParked, "runtime.gcBgMarkWorker", "runtime.goexit"), GoroutineParked, false},
	{"syscall", []string{"syscall.Syscall6", "syscall.Read", "os.(*File).Read", "main.main"}, GoroutineSyscall, false},
	{"x/sys syscall", []string{"golang.org/x/sys/unix.Syscall", "main.main"}, GoroutineSyscall, false},
	{"running", []string{"main.spin", "main.main", "runtime.main"}, GoroutineRunning, false},
	{"no stack", nil, GoroutineUnknown, false},
}

// TestGoroutineFrames pins how goroutine stacks (leaf first, as Go's
// goroutine and block profiles of fixtures/observations hold them) read.
func TestGoroutineFrames(t *testing.T) {
	for _, c := range goroutineCases {
		if got := GoroutineState(c.stack); got != c.state {
			t.Errorf("%s: GoroutineState = %q, want %q", c.name, got, c.state)
		}
		if got := isLockWait(c.stack); got != c.lock {
			t.Errorf("%s: isLockWait = %v, want %v", c.name, got, c.lock)
		}
	}

	// A program is Go when its eBPF stacks run through the runtime's
	// start: goexit or mstart.
	for fn, want := range map[string]bool{"runtime.goexit": true, "runtime.mstart": true, "runtime.mstart1": false, "main": false} {
		o := &observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: "ebpf",
			Profile: &profile.Profile{Function: []*profile.Function{{Name: fn}}}}}}
		if got := isGo(o); got != want {
			t.Errorf("isGo with %s = %v, want %v", fn, got, want)
		}
	}
}

// TestCSyscallStub: a C library function is a stub of the call it is
// named for, a Go function or a local symbol is not.
func TestCSyscallStub(t *testing.T) {
	for fn, want := range map[string]string{"__munmap": "munmap", "__GI___munmap": "munmap", "mmap64@@GLIBC_2.2.5": "mmap",
		"madvise": "madvise", "mmap.part.0": "", "runtime.madvise": "", "syscall.Syscall6": ""} {
		if got := cSyscallStub(fn); got != want {
			t.Errorf("cSyscallStub(%q) = %q, want %q", fn, got, want)
		}
	}
}

// TestFrameNamesAreRecorded checks that the frame names of the tables
// above are the ones the recorded observations hold, so that the tables
// test what the profiler sees. Names of libraries no recorded workload
// runs through (malloc, C++, Rust) are listed as such.
func TestFrameNamesAreRecorded(t *testing.T) {
	notRecorded := map[string]bool{}
	for _, n := range []string{"malloc", "_int_malloc.constprop.0", "malloc_usable_size", "operator new(unsigned long)",
		"__libc_write", "clock_nanosleep", "worker_thread", "msleep", "bpf_prog_1",
		"main.read", "main.worker", "main.sleepLoop", "main.spin",
		// Go's own names for waits no recorded workload has.
		"sync.runtime_SemacquireMutex", "sync.(*Mutex).lockSlow", "sync.runtime_SemacquireRWMutexR", "sync.(*RWMutex).RLock",
		"sync.runtime_notifyListWait", "sync.(*Cond).Wait", "time.Sleep", "runtime.chanrecv", "runtime.chanrecv1",
		"runtime.block", "syscall.Read", "os.(*File).Read", "golang.org/x/sys/unix.Syscall",
		// The leaf of an mmap stack an earlier memory-c-mmap recorded; a
		// short function a recording's samples may miss.
		"mas_update_gap.part.0"} {
		notRecorded[n] = true
	}
	seen := map[string]bool{}
	dirs, err := filepath.Glob("../../fixtures/observations/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue
		}
		o, err := observation.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range o.Profiles {
			for _, f := range p.Profile.Function {
				seen[f.Name] = true
			}
		}
	}
	var stacks [][]string
	for _, c := range onCPUCases {
		stacks = append(stacks, c.stack)
	}
	for _, c := range offCPUCases {
		stacks = append(stacks, c.stack)
	}
	for _, c := range goroutineCases {
		stacks = append(stacks, c.stack)
	}
	stacks = append(stacks, goRuntimeLockFutex, sysmonLock, goMallocStack)
	for fn := range vocabularyCases {
		stacks = append(stacks, []string{fn})
	}
	for _, st := range stacks {
		for _, n := range st {
			if i := strings.Index(n, ":"); i == 1 {
				n = n[2:]
			}
			if n == "[libc.so.6]" || notRecorded[n] {
				continue
			}
			if !seen[n] {
				t.Errorf("%s is in no recorded profile", n)
			}
		}
	}
}

// vocabulary names each list of frames.go and how it matches.
var vocabulary = []struct {
	name  string
	match func(fn string) bool
}{
	{"goRuntime", func(fn string) bool { return inGoRuntime([]string{fn}) }},
	{"goStart", isGoStart},
	{"goIdle", prefixOf(goIdle)},
	{"goGC", prefixOf(goGC)},
	{"goRuntimeLocks", exactOf(goRuntimeLocks)},
	{"goSyscallWrappers", isSyscallWrapper},
	{"goPlumbing", isGoPlumbing},
	{"allocator", func(fn string) bool { return inAllocator([]string{fn}) }},
	{"pageFaultEntry", prefixOf(pageFaultEntry)},
	{"syscallEntry", prefixOf(syscallEntry)},
	{"syscall", func(fn string) bool { return syscallOf([]string{fn}) != "" }},
	{"faultWait", prefixOf(faultWait)},
	{"diskWait", prefixOf(diskWait)},
	{"networkWait", prefixOf(networkWait)},
	{"futexWait", prefixOf(futexWait)},
	{"pollWait", prefixOf(pollWait)},
	{"sleepWait", prefixOf(sleepWait)},
	{"storageStack", prefixOf(storageStack)},
	{"networkStack", prefixOf(networkStack)},
	{"futexCall", prefixOf(futexCall)},
	{"lockMachinery", prefixOf(lockMachinery)},
	{"cLockFrames", prefixOf(cLockFrames)},
	{"isLockWait", func(fn string) bool { return isLockWait([]string{fn}) }},
	{"goroutineSyscall", prefixOf(goroutineSyscall)},
}

func prefixOf(list []string) func(string) bool {
	return func(fn string) bool { return has([]string{fn}, list...) }
}

func exactOf(list []string) func(string) bool {
	return func(fn string) bool { return hasExact([]string{fn}, list...) }
}

// vocabularyCases are frame names and the lists of frames.go they are in.
var vocabularyCases = map[string]string{
	"runtime.mallocgc":                        "goRuntime goPlumbing allocator",
	"runtime.mallocgcSmallScanNoHeader":       "goRuntime goPlumbing allocator",
	"runtime.futex":                           "goRuntime goPlumbing",
	"runtime.gcBgMarkWorker":                  "goRuntime goGC goPlumbing",
	"runtime.gcBgMarkWorker.func2":            "goRuntime goGC goPlumbing",
	"runtime.lock2":                           "goRuntime goRuntimeLocks goPlumbing",
	"runtime.unlock2":                         "goRuntime goPlumbing",
	"runtime.stopm":                           "goRuntime goIdle goPlumbing",
	"runtime.sysmon":                          "goRuntime goIdle goPlumbing",
	"runtime.goexit":                          "goRuntime goStart goPlumbing",
	"runtime.mstart":                          "goRuntime goStart goPlumbing",
	"runtime.mstart1":                         "goRuntime goPlumbing",
	"runtime.semacquire1":                     "goRuntime goPlumbing lockMachinery",
	"runtime.selectgo":                        "goRuntime goPlumbing",
	"entry_SYSCALL_64_after_hwframe":          "syscallEntry",
	"do_syscall_64":                           "syscallEntry",
	"__x64_sys_fsync":                         "syscall storageStack",
	"__x64_sys_futex":                         "syscall",
	"ksys_write":                              "syscall",
	"__libc_write":                            "",
	"malloc":                                  "allocator",
	"free_unref_folios":                       "",
	"_int_malloc.constprop.0":                 "allocator",
	"futex_wait":                              "futexWait",
	"__futex_wait":                            "futexWait",
	"do_futex":                                "futexCall",
	"asm_exc_page_fault":                      "pageFaultEntry syscall faultWait",
	"exc_page_fault":                          "pageFaultEntry syscall faultWait",
	"handle_mm_fault":                         "faultWait",
	"io_schedule":                             "diskWait",
	"blk_mq_end_request":                      "diskWait storageStack",
	"ext4_sync_file":                          "storageStack",
	"tcp_recvmsg":                             "networkWait networkStack",
	"tcp_sendmsg":                             "networkStack",
	"sk_wait_data":                            "networkWait",
	"do_epoll_wait":                           "pollWait",
	"do_epoll_pwait.part.0":                   "",
	"do_sys_poll":                             "pollWait",
	"do_nanosleep":                            "sleepWait",
	"hrtimer_nanosleep":                       "sleepWait",
	"pthread_mutex_lock":                      "lockMachinery cLockFrames",
	"pthread_mutex_unlock":                    "lockMachinery",
	"internal/sync.(*Mutex).lockSlow":         "goPlumbing lockMachinery",
	"internal/sync.runtime_SemacquireMutex":   "goPlumbing lockMachinery isLockWait",
	"sync.(*Mutex).Lock":                      "goPlumbing isLockWait",
	"sync.(*WaitGroup).Wait":                  "goPlumbing",
	"internal/poll.runtime_pollWait":          "goPlumbing",
	"syscall.Syscall":                         "goSyscallWrappers goPlumbing goroutineSyscall",
	"internal/runtime/syscall/linux.Syscall6": "goSyscallWrappers goPlumbing",
	"os.(*File).Sync":                         "goPlumbing",
	"main.fsyncLoop":                          "",
}

// TestFrameVocabulary pins which lists of frames.go each frame name is
// in. Names are as the profiles of fixtures/observations hold them,
// except malloc and __libc_write, which no recorded workload calls.
func TestFrameVocabulary(t *testing.T) {
	for fn, want := range vocabularyCases {
		var got []string
		for _, v := range vocabulary {
			if v.match(fn) {
				got = append(got, v.name)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s is in %q, want %q", fn, strings.Join(got, " "), want)
		}
	}
}

// TestCallerFlags pins what callerOutside says about a stack without a
// frame of the program's own, the flags the priorities decide on: a name
// that looks like a library's ("[libfoo]") is the program's when its frame
// is, and bpf/symbolize's unresolved stack is unknown, not the program's.
func TestCallerFlags(t *testing.T) {
	unresolved := &profile.Sample{Location: []*profile.Location{
		{ID: 1, Mapping: kernelMap, Line: []profile.Line{{Function: &profile.Function{ID: 1, Name: "__schedule"}}}},
		{ID: 2, Line: []profile.Line{{Function: &profile.Function{ID: 2, Name: unresolvedStack}}}},
	}}
	unresolvedSh := &profile.Sample{Location: unresolved.Location, Label: map[string][]string{"comm": {"sh"}}}
	if got := leafUserFunction(unresolvedSh); got != "[unknown in sh]" {
		t.Errorf("leaf of an unresolved sh: %q", got)
	}
	for _, c := range []struct {
		name string
		s    *profile.Sample
		want caller
	}{
		{"the program's own", stack(cSend...), caller{name: "main"}},
		{"a function named like a library", stack("k:__schedule", "[jit stub]", "main.main"), caller{name: "[jit stub]"}},
		{"the Go runtime", stack(goIdleFutex...), caller{name: "the Go runtime", inRuntime: true}},
		{"a C library without frame pointers", stack("k:__schedule", "k:do_nanosleep", "[libc.so.6]"), caller{name: "[libc.so.6]", inLibrary: true}},
		{"kernel frames only", stack("k:__schedule", "k:__do_sys_sched_yield"), caller{name: "[unknown]", unknown: true}},
		{"an unresolved process", unresolved, caller{name: "[unknown]", unknown: true}},
		{"an unresolved process, by name", unresolvedSh, caller{name: "[unknown in sh]", unknown: true}},
	} {
		got := callerOutside(c.s, "")
		if got != c.want {
			t.Errorf("%s: callerOutside = %+v, want %+v", c.name, got, c.want)
		}
		if unseen := c.want.inLibrary || c.want.unknown; got.callersUnseen() != unseen {
			t.Errorf("%s: callersUnseen = %v, want %v", c.name, got.callersUnseen(), unseen)
		}
	}
	// The names the priorities give: a lock or an allocation in a
	// library says its callers are unseen; one in the program's code
	// does not, whatever its name.
	if got := lockSite(caller{name: "[jit stub]"}); got != "[jit stub]" {
		t.Errorf("lockSite of the program's [jit stub] = %q", got)
	}
	if got := lockSite(caller{name: "[libc.so.6]", inLibrary: true}); got != "a lock taken in [libc.so.6] (callers unseen: no frame pointers)" {
		t.Errorf("lockSite of libc = %q", got)
	}
}

// TestDiskWaitCalls pins the remedy of a disk wait by its system call,
// over every x86-64 system call whose name holds "sync" or "read" (kernel
// 6.18's kallsyms): a flush is batched, a read is an I/O pattern, and the
// calls that only share the letters (set_thread_area, process_vm_readv)
// are neither.
func TestDiskWaitCalls(t *testing.T) {
	for op, want := range map[string]string{
		"fsync": RemedyBatching, "fdatasync": RemedyBatching, "sync_file_range": RemedyBatching, "sync_file_range2": RemedyBatching,
		"ia32_sync_file_range": RemedyBatching, "sync": RemedyBatching, "syncfs": RemedyBatching, "msync": RemedyBatching,
		"read": RemedyIOPattern, "pread64": RemedyIOPattern, "ia32_pread64": RemedyIOPattern, "readv": RemedyIOPattern,
		"preadv": RemedyIOPattern, "preadv2": RemedyIOPattern, "readahead": RemedyIOPattern, "ia32_readahead": RemedyIOPattern,
		"readlink": RemedyIOPattern, "readlinkat": RemedyIOPattern, "old_readdir": RemedyIOPattern,
		"get_thread_area": RemedyBatching, "set_thread_area": RemedyBatching, "process_vm_readv": RemedyBatching,
		"write": RemedyBatching, "pwrite64": RemedyBatching, "page fault": RemedyBatching, "": RemedyBatching,
	} {
		if got := waitRemedy(WaitDisk, op, nil); got != want {
			t.Errorf("a disk wait in %q: remedy %q, want %q", op, got, want)
		}
	}
	// Direct I/O reads in the program's own pattern, whatever the call.
	if got := waitRemedy(WaitDisk, "write", []string{"iomap_dio_rw"}); got != RemedyIOPattern {
		t.Errorf("a direct I/O write: remedy %q, want %q", got, RemedyIOPattern)
	}
}

// TestGoroutineWaitSite pins where the goroutine table says a goroutine
// waits: the program's own function, else the first outside the runtime,
// sync and internal packages, else the leaf.
func TestGoroutineWaitSite(t *testing.T) {
	want := map[string]string{
		"sync.Mutex":           "main.contend.func1",
		"Go 1.23's sync.Mutex": "main.contend.func1",
		"RWMutex":              "main.read",
		"WaitGroup":            "main.main",
		"netpoll":              "net.(*netFD).Read",
		"select":               "net/http/pprof.sleep",
		"GC worker":            "runtime.gopark",
		"syscall":              "main.main",
		"x/sys syscall":        "golang.org/x/sys/unix.Syscall",
		"no stack":             "",
	}
	for _, c := range goroutineCases {
		w, ok := want[c.name]
		if !ok {
			continue
		}
		got := ""
		if i := GoroutineWaitSite(c.stack); i >= 0 {
			got = c.stack[i]
		}
		if got != w {
			t.Errorf("%s: GoroutineWaitSite at %q, want %q", c.name, got, w)
		}
	}
}

// TestFileLocks: file locks are locks. A sleep on one another holds is a
// lock wait, whole (nobody parks idle on one), with eBPF's stacks or
// /proc's wchan, whether the kernel inlined the wait or not; and when a
// window shows such a sleep, a flock call's time and an fcntl lock's walk
// of the file's locks are contention on a CPU, as is a wait for a CPU in
// their code. Without one they are the calls' time: a lock nobody else
// wants. The stacks are a convoy of four processes on one file's flock,
// and on an fcntl record lock (perfhound diagnose of each, kernel 6.18).
func TestFileLocks(t *testing.T) {
	user := []string{"k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe"}
	flockCPU := slices.Concat([]string{"k:flock_lock_inode", "k:locks_lock_inode_wait", "k:__do_sys_flock"}, user, []string{"c:flock", "main"})
	fcntlCPU := slices.Concat([]string{"k:__locks_insert_block", "k:posix_lock_inode", "k:fcntl_setlk", "k:do_fcntl", "k:__x64_sys_fcntl"},
		user, []string{"c:__libc_fcntl64", "main"})
	// A flock through a file system's own f_op->flock (NFS, FUSE): only
	// the call's frame says it is one.
	viaFS := slices.Concat([]string{"k:nfs_flock", "k:__do_sys_flock"}, user, []string{"c:flock", "main"})
	flockWait := slices.Concat([]string{"k:__schedule", "k:schedule", "k:locks_lock_inode_wait", "k:__do_sys_flock"}, user, []string{"c:flock", "main"})
	fcntlWait := slices.Concat([]string{"k:__schedule", "k:schedule", "k:fcntl_setlk", "k:do_fcntl", "k:__x64_sys_fcntl"}, user,
		[]string{"c:__libc_fcntl64", "main"})
	notInlined := slices.Concat([]string{"k:__schedule", "k:schedule", "k:do_lock_file_wait", "k:fcntl_setlk", "k:do_fcntl",
		"k:__x64_sys_fcntl"}, user, []string{"c:__libc_fcntl64", "main"})
	for _, c := range []struct {
		name  string
		stack []string
	}{{"flock", flockWait}, {"fcntl's lock", fcntlWait}, {"a wait the kernel did not inline", notInlined}} {
		s := stack(c.stack...)
		fns := frames(s)
		if w := classifyWait("S", fns); w != WaitLock {
			t.Errorf("%s asleep: %s, want %s", c.name, w, WaitLock)
		}
		if share := (parking{}).lockShare(s, fns); share != 1 {
			t.Errorf("%s asleep: lock share %.2f, want 1", c.name, share)
		}
	}
	for _, wchan := range []string{"locks_lock_inode_wait", "fcntl_setlk", "flock_lock_inode_wait", "posix_lock_inode_wait", "do_lock_file_wait"} {
		if w := threadStateWait("S", wchan, "", "file", false); w != WaitLock {
			t.Errorf("asleep in %s without eBPF: %s, want %s", wchan, w, WaitLock)
		}
	}

	observe := func(sleeps bool) *observation.Observation {
		on := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
		off := &profile.Profile{SampleType: []*profile.ValueType{{Type: "off_cpu", Unit: "nanoseconds"}}}
		for _, st := range [][]string{flockCPU, fcntlCPU, viaFS} {
			on.Sample = append(on.Sample, stack(st...))
		}
		runnable := stack(slices.Concat([]string{"k:__schedule", "k:schedule", "k:posix_lock_inode", "k:fcntl_setlk", "k:do_fcntl",
			"k:__x64_sys_fcntl"}, user, []string{"c:__libc_fcntl64", "main"})...)
		runnable.Label = map[string][]string{"state": {"R"}}
		off.Sample = append(off.Sample, runnable)
		if sleeps {
			asleep := stack(flockWait...)
			asleep.Label = map[string][]string{"state": {"S"}}
			off.Sample = append(off.Sample, asleep)
		}
		for _, s := range append(slices.Clone(on.Sample), off.Sample...) {
			s.Value = []int64{int64(time.Second)}
			s.NumLabel = map[string][]int64{"pid": {7}, "tid": {7}}
		}
		return &observation.Observation{Profiles: []observation.Profile{
			{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: on},
			{Kind: observation.KindOffCPU, Source: observation.SourceEBPF, Profile: off},
		}}
	}
	// Contended: the three calls on a CPU, the wait for a CPU in the
	// lock's code and the sleep.
	if b := BreakdownOf(observe(true)); b.ByClass[ClassContention] != 5 || b.ByClass[ClassCPU] != 0 {
		t.Errorf("file locks a thread slept on: %v, want contention 5 s", b.ByClass)
	}
	if b := BreakdownOf(observe(false)); b.ByClass[ClassCPU] != 4 || b.ByClass[ClassContention] != 0 {
		t.Errorf("file locks nobody slept on: %v, want cpu 4 s", b.ByClass)
	}
}

// TestJavaMonitor: a Java synchronized block's contended monitor spins
// and hands over in HotSpot's ObjectMonitor (its names as the symbolizer
// demangles them): contention on a CPU and in the run queue, as glibc's
// mutexes are. The stacks are a JVM's, 8 threads on one monitor.
func TestJavaMonitor(t *testing.T) {
	spin := []string{"ObjectMonitor::TrySpin", "ObjectMonitor::enter", "ObjectSynchronizer::enter", "[jit]"}
	if class := onCPUClass(OnCPUUser, frames(stack(spin...))); class != ClassContention {
		t.Errorf("spinning on a monitor: %s, want %s", class, ClassContention)
	}
	exit := []string{"k:__schedule", "k:schedule", "k:exit_to_user_mode_loop", "k:do_syscall_64", "k:entry_SYSCALL_64_after_hwframe",
		"c:syscall", "ObjectMonitor::ExitEpilog", "ObjectMonitor::exit", "[jit]"}
	if class := waitClassOf(WaitRunQueue, frames(stack(exit...))); class != ClassContention {
		t.Errorf("preempted handing a monitor over: %s, want %s", class, ClassContention)
	}
}

// TestNetlinkWait: a wait on a netlink socket is for the kernel's
// messages, not a peer's: glibc's mq_notify helper thread (stress-ng's mq
// stressor) waited so for its whole life, and was a network wait.
func TestNetlinkWait(t *testing.T) {
	helper := []string{"k:__schedule", "k:schedule", "k:schedule_timeout", "k:__skb_wait_for_more_packets", "k:__skb_recv_datagram",
		"k:skb_recv_datagram", "k:netlink_recvmsg", "k:sock_recvmsg", "k:__sys_recvfrom", "k:__x64_sys_recvfrom", "k:do_syscall_64",
		"k:entry_SYSCALL_64_after_hwframe", "c:recv", "c:helper_thread", "c:start_thread"}
	udp := slices.Concat(helper[:4], []string{"k:__skb_recv_udp", "k:udp_recvmsg", "k:inet_recvmsg"}, helper[7:])
	if w := classifyWait("S", frames(stack(helper...))); w != WaitOther {
		t.Errorf("a netlink socket's wait: %s, want %s", w, WaitOther)
	}
	if w := classifyWait("S", frames(stack(udp...))); w != WaitNetwork {
		t.Errorf("a UDP socket's wait: %s, want %s", w, WaitNetwork)
	}
}
