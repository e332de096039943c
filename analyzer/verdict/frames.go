package verdict

import (
	"path"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/gosym"
)

// The stack vocabulary: the frames of the Go runtime, the kernel, the C
// library and the allocators by which a stack says what its thread was
// doing, and the functions that read a stack with them. The rest of the
// package judges, ranks and renders from what these say; a frame name is
// matched nowhere else.
//
// A stack is its function names, leaf first (frames). Lists match by
// prefix (has), so that a kernel's or compiler's variants
// ("do_epoll_pwait.part.0", "_int_malloc.constprop.0") and Go's closures
// ("runtime.gcBgMarkWorker.func2") match their function; those said to be
// exact match whole names (hasExact).

// frames lists a sample's function names, leaf first.
func frames(s *profile.Sample) []string {
	n := 0
	for _, l := range s.Location {
		n += len(l.Line)
	}
	out := make([]string, 0, n) // one allocation: this runs for every sample, several times
	for _, l := range s.Location {
		for _, ln := range l.Line {
			if ln.Function != nil {
				out = append(out, ln.Function.Name)
			}
		}
	}
	return out
}

// has reports whether a frame of fns starts with one of prefixes.
func has(fns []string, prefixes ...string) bool {
	for _, f := range fns {
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
	}
	return false
}

// hasExact reports whether fns holds one of names exactly.
func hasExact(fns []string, names ...string) bool {
	for _, f := range fns {
		for _, n := range names {
			if f == n {
				return true
			}
		}
	}
	return false
}

// IsKernel tells a location in the kernel's code: bpf/symbolize maps
// kernel addresses to "[kernel.kallsyms]" (and a BPF program's to "[bpf]",
// which this does not count). The HTML report's flame graphs use it too.
func IsKernel(l *profile.Location) bool {
	return l.Mapping != nil && strings.HasPrefix(l.Mapping.File, "[kernel")
}

// The Go runtime.

// goRuntime is the runtime's package prefix: a stack through it is a Go
// program's (the runtime parks, wakes and schedules its threads itself).
const goRuntime = gosym.RuntimePrefix

// goSync is the sync package's prefix: a Go lock is named by the code
// that takes it, outside sync.
const goSync = "sync."

// IsGoRuntime tells a function of the Go runtime's package
// ("runtime.mallocgc"; not runtime/pprof's). The HTML report's flame
// graphs colour these frames apart.
func IsGoRuntime(fn string) bool { return gosym.IsRuntime(fn) }

// inGoRuntime tells a stack that runs through the Go runtime.
func inGoRuntime(fns []string) bool { return has(fns, goRuntime) }

// goStart are the runtime's roots of every goroutine (goexit) and thread
// (mstart), exact: a profile holding one is a Go program's.
var goStart = []string{"runtime.goexit", "runtime.mstart"}

// isGoStart tells the runtime's root of a goroutine or thread.
func isGoStart(fn string) bool { return hasExact([]string{fn}, goStart...) }

// goIdle are the runtime frames that mark a thread or goroutine as the
// runtime's own: idle Ms parked in the scheduler (stopm, notesleep, mPark,
// findRunnable), sysmon and the template thread, the netpoller waiting for
// work, a stop-the-world, and timed sleeps of system goroutines
// (notetsleepg).
var goIdle = []string{"runtime.stopm", "runtime.notesleep", "runtime.mPark", "runtime.sysmon",
	"runtime.usleep", "runtime.netpollblock", "runtime.findRunnable", "runtime.templateThread", "runtime.stopTheWorld",
	"runtime.notetsleepg"}

// goGC is the garbage collector's work: the background mark workers,
// assists charged to allocating goroutines, root marking and draining,
// the background sweeper and scavenger.
var goGC = []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge",
	"runtime.gcDrain", "runtime.markroot", "runtime.sweepone"}

// goMalloc is Go's allocator (mallocgc and its size-class variants,
// mallocgcSmallNoscan, mallocgcLarge...).
var goMalloc = []string{"runtime.mallocgc"}

// goRuntimeLocks are the runtime's own mutex (lock2 behind lock and
// lockWithRank), exact: a futex wait under it is contention, on a
// channel's or the scheduler's lock, not an idle thread.
var goRuntimeLocks = []string{"runtime.lock2", "runtime.lockWithRank", "runtime.lock"}

// goSyscallWrappers are the Go packages whose functions only enter the
// kernel: syscall, x/sys/unix, and the runtime's and standard library's
// internal syscall packages.
var goSyscallWrappers = []string{"syscall.", "internal/runtime/syscall", "internal/syscall/", "golang.org/x/sys/unix.", "runtime/internal/syscall"}

// isSyscallWrapper tells Go functions that only enter the kernel.
func isSyscallWrapper(fn string) bool { return has([]string{fn}, goSyscallWrappers...) }

// goPlumbing are the Go frames that only carry a call to the OS, the
// scheduler or a lock's slow path: the runtime, syscall wrappers, the
// poller, os.File's and net's connection methods, sync.
var goPlumbing = []string{"runtime.", "syscall.", "internal/poll.", "internal/syscall", "internal/runtime/", "os.(*File).",
	"os.(*file).", "net.(*conn).", "net.(*netFD).", "sync.", "internal/sync."}

// isGoPlumbing tells Go frames that only carry a call to the OS, the
// scheduler or a lock's slow path.
func isGoPlumbing(fn string) bool { return has([]string{fn}, goPlumbing...) }

// isLibrary tells library code that does its caller's work: a function of
// a standard library package whose path has two elements or more
// ("crypto/sha256.block", "compress/flate.(*compressor).deflate",
// "encoding/json.Unmarshal"). The one-element packages (runtime, sync, os,
// net, syscall, strings, slices...) are not, as the verdict has read them
// from the start (TestFrameNaming): a priority names their functions by
// themselves, not "from" their caller; runtime, sync, os, net and syscall
// frames are the runtime's work, a lock's or plumbing, told by the lists
// above. No recorded fixture's report depends on the rest (counting all
// one-element packages moves no golden). The HTML report's goroutine
// table counts every standard library package (GoroutineWaitSite).
func isLibrary(fn string) bool {
	pkg := gosym.Package(fn)
	return gosym.IsStd(pkg) && strings.Contains(pkg, "/")
}

// packageOf is a Go function's package path with the trailing dot
// ("crypto/sha256."), the prefix of every function of the package; "" for
// a name that is no Go function's (gosym.Package).
func packageOf(fn string) string {
	if pkg := gosym.Package(fn); pkg != "" {
		return pkg + "."
	}
	return ""
}

// Allocators.

// nativeAllocators are the allocators of programs without a garbage
// collector (and the interpreters' own): time in them is memory
// management as much as Go's mallocgc is. Exact names: these are leaves
// symbolized from a library's dynamic symbols (libc has no frame
// pointers, so little of what called them may be seen).
var nativeAllocators = []string{
	"malloc", "free", "calloc", "realloc", "cfree", "aligned_alloc", "posix_memalign", "memalign",
	"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "_int_malloc", "_int_free", "malloc_consolidate",
	"operator new(unsigned long)", "operator delete(void*)", "operator delete(void*, unsigned long)",
	"je_malloc", "je_free", "tc_malloc", "tc_free", "mi_malloc", "mi_free",
	"__rust_alloc", "__rust_dealloc", "__rust_realloc",
	"PyObject_Malloc", "PyObject_Free", "_PyObject_Malloc", "_PyObject_Free", "pymalloc_alloc", "pymalloc_free",
}

// glibcMallocInternals name glibc's allocator below malloc and free, as
// its separate debug symbols (libc6-dbg) show them; the compiler's clones
// (".constprop.0", ".isra.0") keep the prefix.
var glibcMallocInternals = []string{"_int_malloc", "_int_free", "_int_realloc", "_int_memalign", "unlink_chunk",
	"malloc_consolidate", "sysmalloc", "tcache_get", "tcache_put", "tcache_init", "arena_get2", "__malloc_arena_thread_freeres"}

// inAllocator tells a stack in an allocator: Go's, a native one, or
// glibc's internals.
func inAllocator(fns []string) bool {
	return has(fns, goMalloc...) || hasExact(fns, nativeAllocators...) || has(fns, glibcMallocInternals...)
}

// The kernel: how a thread entered it.

// pageFaultEntry is the x86-64 page fault handler's entry.
var pageFaultEntry = []string{"exc_page_fault", "asm_exc_page_fault", "do_user_addr_fault"}

// syscallEntry is the x86-64 system call entry (entry_SYSCALL_64 and its
// entry_SYSCALL_64_after_hwframe).
var syscallEntry = []string{"entry_SYSCALL_64", "do_syscall_64"}

// Prefixes of the kernel's system call functions: __x64_sys_fsync,
// __do_sys_sched_yield; some entry points tail-call their worker and
// leave only it (ksys_write).
var syscallPrefixes = []string{"__x64_sys_", "__do_sys_", "ksys_"}

// pageFault is what syscallOf names a page fault's kernel stack by.
const pageFault = "page fault"

// syscallOf names the system call a kernel stack is in ("fsync",
// "pread64"), or pageFault; "" when there is none.
func syscallOf(fns []string) string {
	for _, f := range fns {
		for _, p := range syscallPrefixes {
			if rest, ok := strings.CutPrefix(f, p); ok {
				return rest
			}
		}
		if f == "asm_exc_page_fault" || f == "exc_page_fault" {
			return pageFault
		}
	}
	return ""
}

// System calls, as syscallOf names them, that say what a wait on the disk
// was for; each list is every x86-64 entry point of its kind (as kernel
// 6.18's kallsyms names them, compat ones included).

// flushCalls force written data to storage: waiting in them is waiting
// for the flush, which fewer and larger flushes cut.
var flushCalls = []string{"fsync", "fdatasync", "sync_file_range", "sync_file_range2", "ia32_sync_file_range", "sync", "syncfs", "msync"}

// readCalls read a file's data, or a link or directory: waiting in them
// is the read pattern's cost (small or random reads).
var readCalls = []string{"read", "pread64", "ia32_pread64", "readv", "preadv", "preadv2", "readahead", "ia32_readahead",
	"readlink", "readlinkat", "old_readdir"}

// memoryCalls manage the address space: map, unmap, remap, protect,
// advise, lock pages, move the break, place pages on nodes. Their cost is
// the kernel's memory management (page tables, TLB shootdowns, zeroing,
// the mm lock): mapping churn, which reusing mappings, huge pages and
// fewer munmap and madvise calls cut.
var memoryCalls = []string{"mmap", "mmap_pgoff", "old_mmap", "munmap", "mremap", "madvise", "process_madvise",
	"mprotect", "pkey_mprotect", "brk", "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
	"mbind", "set_mempolicy", "migrate_pages", "move_pages", "mseal"}

// fileCalls work on files and directories only (a socket has no offset to
// read at, no data to flush, no directory entries): their kernel time is
// the storage stack's, whatever functions it runs through. Not
// newfstatat or statx: with AT_EMPTY_PATH they stat any descriptor (the C
// library's fstat is newfstatat since glibc 2.33).
var fileCalls = []string{"pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "fsync", "fdatasync",
	"sync_file_range", "syncfs", "sync", "fallocate", "ftruncate", "truncate", "open", "openat", "openat2", "creat",
	"newstat", "newlstat", "getdents64", "getdents", "readlink", "readlinkat", "rename", "renameat", "renameat2",
	"unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "fadvise64", "fadvise64_64", "copy_file_range", "readahead"}

// socketCalls work on sockets only.
var socketCalls = []string{"socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
	"getpeername", "sendto", "recvfrom", "setsockopt", "getsockopt", "shutdown", "sendmsg", "recvmsg", "sendmmsg",
	"recvmmsg"}

// yieldCalls give the CPU up to another thread. Outside the Go runtime
// (whose osyield is its scheduler's and its own lock's), a program yields
// to wait for another thread: user-space spin locks and spin-waits back
// off with it (TBB's, Boost's, crossbeam's), and stress-ng's mutex
// stressor yields holding its lock. The call's time on a CPU is mostly
// the switch it asks for, and its wait for a CPU the wait it asked for:
// waiting on another thread, which blocking on the lock or condition
// instead of spinning, or holding the lock for less, cuts.
var yieldCalls = []string{"sched_yield"}

// programYield tells a stack in a yield of the program's own (op, as
// syscallOf or cSyscallStub names it), not the Go runtime's.
func programYield(op string, fns []string) bool {
	return hasExact([]string{op}, yieldCalls...) && !inGoRuntime(fns)
}

// cSyscallStub is the system call a C library function that only makes
// it is named for ("munmap" for __munmap, __GI___munmap or
// munmap@@GLIBC_2.2.5, "mmap" for mmap64), or "" for a Go function (its
// wrappers are isSyscallWrapper's).
func cSyscallStub(fn string) string {
	fn, _, _ = strings.Cut(fn, "@")
	if strings.ContainsAny(fn, "./") {
		return ""
	}
	fn = strings.TrimPrefix(fn, "__GI_")
	fn = strings.TrimLeft(fn, "_")
	return strings.TrimSuffix(fn, "64")
}

// memoryStack is the kernel's work for the memory calls, for the stacks
// that do not name the call (mmap's entry tail-calls vm_mmap_pgoff, and
// its frame is gone).
var memoryStack = []string{"vm_mmap_pgoff", "do_mmap", "__mmap_region", "__vm_munmap", "do_vmi_munmap",
	"do_mprotect_pkey", "do_madvise", "madvise_vma_behavior", "do_brk_flags", "mremap_to"}

// isMemoryCall tells a system call that manages the address space.
func isMemoryCall(op string) bool { return hasExact([]string{op}, memoryCalls...) }

// mappingWork tells a stack in a memory call: named (op), or by the
// kernel's work for it.
func mappingWork(op string, fns []string) bool { return isMemoryCall(op) || has(fns, memoryStack...) }

// isFlushCall tells a system call that forces written data to storage.
func isFlushCall(op string) bool { return hasExact([]string{op}, flushCalls...) }

// isReadCall tells a system call that reads a file.
func isReadCall(op string) bool { return hasExact([]string{op}, readCalls...) }

// The kernel: why a thread slept (off-CPU stacks).

// faultWait is a page fault that sleeps (on I/O or reclaim).
var faultWait = []string{"exc_page_fault", "asm_exc_page_fault", "handle_mm_fault"}

// diskWait is block I/O: waiting for a request, a page or a buffer under
// I/O, direct I/O, the ext4 journal, fdatawait.
var diskWait = []string{"io_schedule", "folio_wait", "submit_bio_wait", "blk_", "iomap_dio", "jbd2_", "wait_on_page",
	"bit_wait_io", "__filemap_fdatawait"}

// networkWait is a socket: receiving, accepting, a full send buffer, a
// connect in progress, a datagram.
var networkWait = []string{"tcp_recvmsg", "sk_wait_data", "inet_csk_accept", "sk_stream_wait_memory", "unix_stream_read",
	"udp_recvmsg", "inet_wait_for_connect", "__skb_wait_for_more_packets"}

// netlinkWait is a wait on a netlink socket, whose messages come from the
// kernel (link and route changes, audit, a message queue's notification),
// not from a peer: waiting for events, as an idle event loop does. glibc's
// mq_notify helper thread waits so for its process's whole life.
var netlinkWait = []string{"netlink_recvmsg"}

// kernelLockWait is a sleep on one of the kernel's own locks: a
// read-write semaphore (the mm lock that mmap, munmap and page faults of
// one process's threads take, an inode's lock) or a mutex. Nobody parks
// idle on one: it is contention whatever the holder does.
var kernelLockWait = []string{"rwsem_down_read_slowpath", "rwsem_down_write_slowpath", "__mutex_lock", "percpu_rwsem_wait"}

// fileLockWait is a sleep on a file lock another process or thread holds:
// flock(2)'s, and fcntl(2)'s and lockf(3)'s record locks. Kernel 6.18
// inlines the waits into locks_lock_inode_wait and fcntl_setlk, where its
// wchan names them too; the others are their own functions where a kernel
// does not inline them. Nobody parks idle on a file lock either.
var fileLockWait = []string{"locks_lock_inode_wait", "fcntl_setlk", "flock_lock_inode_wait", "posix_lock_inode_wait",
	"do_lock_file_wait"}

// fileLockCode is the file locks' code: a flock call (a lock's operation,
// as a futex call is), an fcntl or lockf lock's (posix_lock_inode walks
// the file's list of locks), and the waits. Its time counts towards
// contention when the window shows a sleep in it (classifier): a program
// that takes a file lock nobody else wants (a logger's flock around each
// write) spends its time on the call, not on contention.
var fileLockCode = slices.Concat([]string{"__do_sys_flock", "__x64_sys_flock", "flock_lock_inode", "posix_lock_inode",
	"vfs_lock_file"}, fileLockWait)

// isLockSleep tells a sleep on a kernel lock or a file lock: contention
// whatever the holder does.
func isLockSleep(fns []string) bool { return has(fns, kernelLockWait...) || has(fns, fileLockWait...) }

// futexWait is a futex wait: a lock, a condition, or a parked thread.
var futexWait = []string{"futex_wait", "__futex_wait"}

// pollWait is epoll, poll or select.
var pollWait = []string{"do_epoll_wait", "do_sys_poll", "do_select", "do_poll"}

// sleepWait is nanosleep and its timers.
var sleepWait = []string{"do_nanosleep", "hrtimer_nanosleep", "clock_nanosleep"}

// directIO is direct I/O, which skips the page cache: read in the
// program's own pattern.
var directIO = []string{"iomap_dio", "__iomap_dio_rw", "blkdev_direct_IO"}

// connectWait is a TCP connect waiting for its handshake.
var connectWait = []string{"inet_wait_for_connect", "__inet_stream_connect"}

// sendBufferWait is a send waiting for room in the socket's buffer.
var sendBufferWait = []string{"sk_stream_wait_memory"}

// The kernel and libraries: what on-CPU time was spent on.
var (
	storageStack = []string{"vfs_fsync", "__x64_sys_fsync", "__x64_sys_fdatasync", "__x64_sys_sync_file_range",
		"ext4_", "xfs_", "btrfs_", "f2fs_", "jbd2", "iomap_", "blk_", "submit_bio", "bio_", "virtblk_",
		"virtio_queue_rq", "nvme_", "scsi_", "do_writepages", "file_write_and_wait", "filemap_", "generic_perform_write"}
	networkStack = []string{"tcp_", "udp_", "inet_", "sock_", "__sock_", "__sys_sendto", "__sys_recvfrom",
		"__sys_sendmsg", "__sys_recvmsg", "__sys_connect", "__sys_accept", "ip_", "__dev_queue_xmit",
		"net_rx_action", "__netif_", "__napi_", "unix_stream", "unix_dgram", "skb_"}
	// Lock handoffs: the slow paths of Go's sync.Mutex and runtime
	// semaphores, glibc's contended mutexes, and HotSpot's monitors (a
	// Java synchronized block's: ObjectMonitor's spinning, entering and
	// handing over, as its demangled names read). Not every futex call: the
	// Go runtime's own (parking and waking threads) are scheduling.
	lockMachinery = []string{"sync.(*Mutex).lockSlow", "sync.(*Mutex).unlockSlow", "internal/sync.(*Mutex).lockSlow",
		"internal/sync.(*Mutex).unlockSlow", "sync.(*RWMutex).", "runtime.semacquire", "runtime.semrelease",
		"sync.runtime_Semacquire", "sync.runtime_Semrelease", "internal/sync.runtime_Semacquire",
		"internal/sync.runtime_Semrelease", "__lll_lock_wait", "__lll_lock_wake", "__pthread_mutex_lock",
		"pthread_mutex_lock", "pthread_mutex_unlock", "__pthread_mutex_unlock", "pthread_rwlock_", "__pthread_rwlock_",
		"ObjectMonitor::", "ObjectSynchronizer::"}
)

// reclaimStack is the kernel freeing memory for an allocation (direct
// reclaim, a cgroup over its high limit) or compacting it for a huge
// page: memory work, whatever the thread was doing when it needed a page.
// These and kernelLocks are prefixes of kernel 6.18's /proc/kallsyms
// names (the inlined ones are not there to see).
var reclaimStack = []string{"try_to_free_pages", "do_try_to_free_pages", "try_to_free_mem_cgroup_pages", "shrink_node",
	"shrink_lruvec", "shrink_folio_list", "shrink_slab", "__alloc_pages_direct_compact", "try_to_compact_pages",
	"compact_zone", "__compact_zone", "__mem_cgroup_handle_over_high", "reclaim_high"}

// kernelLocks are the kernel's own locks' slow paths: spinning on a
// contended spinlock, mutex or rwsem (the mm lock of a process whose
// threads map and unmap at once, an inode's lock), or queueing and
// sleeping for it (kernelLockWait).
var kernelLocks = slices.Concat([]string{"native_queued_spin_lock_slowpath", "__pv_queued_spin_lock_slowpath",
	"queued_read_lock_slowpath", "queued_write_lock_slowpath", "mutex_spin_on_owner", "rwsem_spin_on_owner",
	"osq_lock"}, kernelLockWait)

// fileLockCalls take and let go of file locks (fcntl only with its lock
// commands, which its kernel frames tell). A hand-off on the way out of
// one counts whole when file locks are contention (classifier): nobody
// parks idle on a file lock.
var fileLockCalls = []string{"flock", "fcntl"}

// futexCall is the kernel's futex system call, waiting or waking.
var futexCall = []string{"do_futex"}

// cLockFrames are the C library's mutex and rwlock slow paths.
var cLockFrames = []string{"__lll_lock_wait", "__pthread_mutex_lock", "pthread_mutex_lock", "pthread_rwlock_", "__pthread_rwlock_",
	"__pthread_mutex_cond_lock", "lll_mutex_lock_optimized"}

// Classifying a sample.

// classifyOnCPU names what an on-CPU sample was doing.
func classifyOnCPU(s *profile.Sample) string {
	fns := frames(s)
	switch {
	case has(fns, goGC...):
		return OnCPUGC
	case inAllocator(fns):
		return OnCPUAlloc
	}
	if len(fns) == 0 || !IsKernel(s.Location[0]) {
		return OnCPUUser
	}
	switch {
	case has(fns, pageFaultEntry...):
		return OnCPUPageFault
	case has(fns, syscallEntry...):
		return OnCPUSyscall
	}
	return OnCPUKernel
}

// classifyWait names why a thread was off CPU, from its state and stack
// (leaf first: kernel frames, then the user frames that made the call).
func classifyWait(state string, fns []string) string {
	switch state {
	case "R":
		return WaitRunQueue
	case "I", "P":
		return WaitIdle
	case "D":
		switch {
		case has(fns, faultWait...):
			return WaitFault
		case has(fns, diskWait...):
			return WaitDisk
		case isLockSleep(fns):
			return WaitLock
		}
		return WaitOther
	}
	// S (and anything else): a voluntary sleep.
	switch {
	case has(fns, goIdle...):
		return WaitIdle
	case has(fns, netlinkWait...):
		return WaitOther
	case has(fns, networkWait...):
		return WaitNetwork
	case has(fns, futexWait...), isLockSleep(fns):
		return WaitLock
	case has(fns, pollWait...):
		return WaitPoll
	case has(fns, sleepWait...):
		return WaitSleep
	}
	return WaitOther
}

// Naming the code a stack ran for.

// leafUserFunction is the sample's innermost function outside the kernel,
// or JITCode.
func leafUserFunction(s *profile.Sample) string {
	for _, l := range s.Location {
		if IsKernel(l) {
			continue
		}
		for _, ln := range l.Line {
			if ln.Function != nil {
				if ln.Function.Name == unresolvedStack && l.Mapping == nil {
					return unresolvedName(s)
				}
				return ln.Function.Name
			}
		}
		if isJIT(l) {
			return JITCode
		}
	}
	return "[unknown]"
}

// unresolvedName names the user stack of a process that exited before
// its mappings were read (bpf/symbolize's unresolved location) by the
// process's name, when the sample has it: a script's short-lived
// commands, each by name, rather than one "[unknown]".
func unresolvedName(s *profile.Sample) string {
	if comm := s.Label["comm"]; len(comm) == 1 && comm[0] != "" {
		return "[unknown in " + comm[0] + "]"
	}
	return unresolvedStack
}

// jitMapping is the mapping bpf/symbolize gives executable memory that no
// file backs (symbolize.AnonMapping): a JIT's code, or an interpreter's
// generated stubs.
const jitMapping = "//anon"

// JITCode names code in such memory that the JIT's perf map
// (/tmp/perf-PID.map) does not name, or that has none: a Java, .NET or
// JavaScript program's hot code. A frame there is the program's own, not
// a library's: a lock taken from it is taken by the program.
const JITCode = "[JIT code]"

// isJIT tells a location in JIT code that nothing names.
func isJIT(l *profile.Location) bool {
	return l.Mapping != nil && l.Mapping.File == jitMapping && len(l.Line) == 0
}

// caller is the code a stack ran for, as callerOutside finds it: a
// function of the program's own, or, when the stack has none, what it
// ended in, said by the flags (the name is then for a person only).
type caller struct {
	// name is the function, "the Go runtime", "[libfoo.so]" (the library
	// whose mapping the stack ended in) or "[unknown]".
	name string
	// inRuntime: no frame of the program's own, and the stack ran through
	// the Go runtime, which parks and wakes threads on its own.
	inRuntime bool
	// inLibrary: no frame of the program's own, and the stack ended in a
	// library's mapping: a C library built without frame pointers ends
	// the user stack inside it, so its callers are unseen.
	inLibrary bool
	// unknown: no frame that names anything (a stack of kernel frames
	// only, or bpf/symbolize's one "[unknown]" location for a process it
	// could not resolve): its callers are unseen too.
	unknown bool
}

// callersUnseen tells a stack that ended where its callers cannot be seen:
// in a library's mapping, or nowhere known.
func (c caller) callersUnseen() bool { return c.inLibrary || c.unknown }

// unresolvedStack is the function of the one location bpf/symbolize
// (symbolize.UnknownFunction) gives the user stack of a process it could
// not resolve, without a mapping.
const unresolvedStack = "[unknown]"

// callerOutside is the innermost frame of the program's own code: not in
// the kernel, the C library, the dynamic loader or the vdso, not in the
// Go runtime or its syscall wrappers, and not starting with skip. When the
// stack has no such frame, the caller's flags say what it ended in.
func callerOutside(s *profile.Sample, skip string) caller {
	for _, l := range s.Location {
		if l.Mapping != nil && isSystemObject(l.Mapping.File) {
			continue
		}
		for _, ln := range l.Line {
			if ln.Function == nil {
				continue
			}
			n := ln.Function.Name
			if (skip != "" && strings.HasPrefix(n, skip)) || isGoPlumbing(n) {
				continue
			}
			if n == unresolvedStack && l.Mapping == nil {
				return caller{name: unresolvedName(s), unknown: true}
			}
			return caller{name: n}
		}
		if isJIT(l) {
			return caller{name: JITCode}
		}
	}
	// No frame of the program's own: name what there is.
	if inGoRuntime(frames(s)) {
		return caller{name: "the Go runtime", inRuntime: true}
	}
	for _, l := range s.Location {
		if l.Mapping != nil && !strings.HasPrefix(l.Mapping.File, "[") && l.Mapping.File != "" {
			return caller{name: "[" + path.Base(l.Mapping.File) + "]", inLibrary: true}
		}
	}
	return caller{name: "[unknown]", unknown: true}
}

// isSystemObject tells the kernel and the libraries every program runs
// through, whose frames say how, not what.
func isSystemObject(file string) bool {
	base := path.Base(file)
	return strings.HasPrefix(file, "[") || strings.HasPrefix(base, "libc.so") || strings.HasPrefix(base, "libc-") ||
		strings.HasPrefix(base, "libpthread") || strings.HasPrefix(base, "ld-linux") || strings.HasPrefix(base, "ld-musl")
}

// Goroutines (Go's goroutine, block and mutex profiles).

// isLockWait tells a block-profile sample that waited on a lock, not on a
// channel, a select or a condition.
func isLockWait(fns []string) bool {
	for _, f := range fns {
		if strings.HasPrefix(f, "sync.(*Mutex).Lock") || strings.HasPrefix(f, "sync.(*RWMutex).") ||
			strings.Contains(f, "runtime_SemacquireMutex") || strings.Contains(f, "runtime_SemacquireRWMutex") {
			return true
		}
	}
	return false
}

// The states GoroutineState tells.
const (
	GoroutineLock      = "waiting on a lock"
	GoroutineWaitGroup = "waiting on a WaitGroup"
	GoroutineCond      = "waiting on a sync.Cond"
	GoroutineNetpoll   = "waiting on a socket or file (netpoll)"
	GoroutineSleep     = "sleeping (time.Sleep)"
	GoroutineChannel   = "waiting on a channel or select"
	GoroutineSyscall   = "in a syscall"
	GoroutineRunning   = "running or runnable"
	GoroutineParked    = "parked in the runtime (other)"
	GoroutineUnknown   = "unknown (no stack)"
)

// goroutineSyscall are the packages a goroutine in a system call is in.
// Unlike goSyscallWrappers, each ends at its package's dot: internal/syscall/unix
// and internal/runtime/syscall/linux are not among them.
var goroutineSyscall = []string{"syscall.", "internal/runtime/syscall.", "runtime/internal/syscall.", "golang.org/x/sys/unix."}

// What a parked goroutine waits on, by the frame that parked it.
var (
	goPark          = []string{"runtime.gopark"}
	goWaitGroupWait = []string{"sync.(*WaitGroup).Wait", "sync.runtime_SemacquireWaitGroup"}
	goCondWait      = []string{"sync.(*Cond).Wait"}
	goNetpollWait   = "internal/poll.runtime_pollWait" // exact
	goSleep         = "time.Sleep"                     // exact
	goChannelWait   = []string{"runtime.chanrecv", "runtime.chansend", "runtime.selectgo"}
	goBlockForever  = "runtime.block" // exact: select {} and friends
)

// GoroutineState says what a goroutine of a goroutine profile is doing,
// from its stack's function names, leaf first: not parked in the runtime
// (running, or in a syscall), or parked waiting on a lock, a WaitGroup, a
// condition, the netpoller, a timer, a channel. The reports that show
// goroutines use it, so that they tell states alike.
func GoroutineState(fns []string) string {
	parked := has(fns, goPark...)
	switch {
	case len(fns) == 0:
		return GoroutineUnknown
	case !parked && has(fns, goroutineSyscall...):
		return GoroutineSyscall
	case !parked:
		return GoroutineRunning
	case isLockWait(fns):
		return GoroutineLock
	case has(fns, goWaitGroupWait...):
		return GoroutineWaitGroup
	case has(fns, goCondWait...):
		return GoroutineCond
	case hasExact(fns, goNetpollWait):
		return GoroutineNetpoll
	case hasExact(fns, goSleep):
		return GoroutineSleep
	case has(fns, goChannelWait...) || hasExact(fns, goBlockForever):
		return GoroutineChannel
	}
	return GoroutineParked
}

// isGoroutineMachinery tells the packages a goroutine passes through to
// wait, none of them the program's: the runtime, sync, and the runtime's
// and the standard library's internal packages.
func isGoroutineMachinery(pkg string) bool {
	return pkg == "runtime" || pkg == "sync" || strings.HasPrefix(pkg, "internal/") || strings.HasPrefix(pkg, "runtime/internal/")
}

// GoroutineWaitSite is where a goroutine of a goroutine profile waits, as
// an index into its function names, leaf first: the first function of the
// program rather than the standard library (a Go function outside it,
// main's included), else the first outside the runtime, sync and internal
// packages (net.(*conn).Read for a server's idle connection), else the
// leaf; -1 for no stack. The HTML report's goroutine table groups by it.
func GoroutineWaitSite(fns []string) int {
	for i, fn := range fns {
		if pkg := gosym.Package(fn); pkg != "" && !gosym.IsStd(pkg) {
			return i
		}
	}
	for i, fn := range fns {
		if !isGoroutineMachinery(gosym.Package(fn)) {
			return i
		}
	}
	if len(fns) > 0 {
		return 0
	}
	return -1
}
