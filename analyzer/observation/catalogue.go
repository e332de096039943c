package observation

import "strings"

// The catalogue: every name an observation's series, histograms and
// profiles carry. Collectors record under these names and the analyzer,
// the HTML report and docs/observation.md read them, so a name is spelled
// once. The strings are the saved format: they never change (observations
// saved before are read and judged as before).
//
// Two families measure one process and differ in where they come from:
//   - process.*: the target process, sampled at every interval by the
//     samplers of agent/collect that watch one PID (the Process* names);
//   - proc.*: every process of the host, from the host-wide process scan
//     at the window's start and end, told apart by a pid label (the
//     HostScan* names).

// SeriesName names a metric series: a dotted path, host.*, process.*,
// proc.*, go.* or watcher.*.
type SeriesName string

// In tells whether the name belongs to a family.
func (n SeriesName) In(f SeriesFamily) bool {
	return strings.HasPrefix(string(n), string(f))
}

// SeriesFamily is the dotted prefix a group of series names shares.
type SeriesFamily string

// Series families.
const (
	FamilyHost          SeriesFamily = "host."           // the whole host
	FamilyHostMemory    SeriesFamily = "host.memory."    // the host's memory and paging
	FamilyHostDisk      SeriesFamily = "host.disk."      // the host's block devices, by device label
	FamilyHostNet       SeriesFamily = "host.net."       // the host's interfaces, by interface label
	FamilyProcess       SeriesFamily = "process."        // the one watched process
	FamilyProcessMemory SeriesFamily = "process.memory." // the watched process's memory
	FamilyHostScan      SeriesFamily = "proc."           // every process of the host, from the process scan
	FamilyGo            SeriesFamily = "go."             // a Go service's runtime, scraped
	FamilyGoHeap        SeriesFamily = "go.heap."        // a Go service's heap, scraped
	FamilyWatcher       SeriesFamily = "watcher."        // perfhound itself
)

// Host series (agent/collect, host samplers).
const (
	HostCPU      SeriesName = "host.cpu"       // cores{cpu, mode}: CPU time by mode, per CPU and "all"
	HostCPUCount SeriesName = "host.cpu.count" // count: online CPUs

	HostLoad1           SeriesName = "host.load.load1"         // count: 1-minute load average
	HostLoad5           SeriesName = "host.load.load5"         // count: 5-minute load average
	HostLoad15          SeriesName = "host.load.load15"        // count: 15-minute load average
	HostProcsRunning    SeriesName = "host.load.procs_running" // count: runnable tasks now
	HostProcsBlocked    SeriesName = "host.load.procs_blocked" // count: tasks in uninterruptible sleep now
	HostMemTotal        SeriesName = "host.memory.total"       // bytes: MemTotal
	HostMemAvailable    SeriesName = "host.memory.available"   // bytes: MemAvailable
	HostMemFree         SeriesName = "host.memory.free"        // bytes: MemFree
	HostMemCached       SeriesName = "host.memory.cached"      // bytes: page cache (Cached)
	HostMemBuffers      SeriesName = "host.memory.buffers"     // bytes: Buffers
	HostMemDirty        SeriesName = "host.memory.dirty"       // bytes: dirty pages waiting for writeback
	HostMemWriteback    SeriesName = "host.memory.writeback"   // bytes: pages being written back
	HostSwapTotal       SeriesName = "host.memory.swap_total"  // bytes: SwapTotal
	HostSwapUsed        SeriesName = "host.memory.swap_used"   // bytes: SwapTotal - SwapFree
	HostPageFaults      SeriesName = "host.memory.pgfault"     // count/s: page faults
	HostMajorFaults     SeriesName = "host.memory.pgmajfault"  // count/s: page faults that needed I/O
	HostSwapIn          SeriesName = "host.memory.pswpin"      // count/s: pages swapped in
	HostSwapOut         SeriesName = "host.memory.pswpout"     // count/s: pages swapped out
	HostReclaimScan     SeriesName = "host.memory.pgscan"      // count/s{reclaimer}: pages scanned for reclaim
	HostReclaimSteal    SeriesName = "host.memory.pgsteal"     // count/s{reclaimer}: pages reclaimed
	HostOOMKills        SeriesName = "host.memory.oom_kill"    // count/s: OOM kills
	HostDiskOps         SeriesName = "host.disk.ops"           // ops/s{device, op}: completed requests
	HostDiskBytes       SeriesName = "host.disk.bytes"         // bytes/s{device, op}: throughput
	HostDiskAwait       SeriesName = "host.disk.await"         // seconds{device, op}: mean time per request
	HostDiskUtil        SeriesName = "host.disk.utilization"   // ratio{device}: share of time busy
	HostDiskQueue       SeriesName = "host.disk.queue"         // count{device}: mean requests in flight
	HostDiskInFlight    SeriesName = "host.disk.in_flight"     // count{device}: requests in flight now
	HostNetBytes        SeriesName = "host.net.bytes"          // bytes/s{interface, dir}: traffic
	HostNetPackets      SeriesName = "host.net.packets"        // count/s{interface, dir}: packets
	HostNetErrors       SeriesName = "host.net.errors"         // count/s{interface, dir}: errors
	HostNetDrops        SeriesName = "host.net.drops"          // count/s{interface, dir}: drops
	HostPSI             SeriesName = "host.psi"                // seconds/s{resource, kind}: pressure stall time
	HostPSIAvg10        SeriesName = "host.psi.avg10"          // percent{resource, kind}: the kernel's 10 s average
	HostTCPCurrEstab    SeriesName = "host.tcp.curr_estab"     // count: TCP connections established now
	HostTCPRetransRatio SeriesName = "host.tcp.retrans_ratio"  // ratio: retransmitted / sent segments
)

// Host TCP counters (count/s, /proc/net/snmp Tcp and /proc/net/netstat
// TcpExt), named after the kernel's.
const (
	HostTCPActiveOpens      SeriesName = "host.tcp.active_opens"       // connections opened by connect
	HostTCPPassiveOpens     SeriesName = "host.tcp.passive_opens"      // connections accepted
	HostTCPAttemptFails     SeriesName = "host.tcp.attempt_fails"      // failed connection attempts
	HostTCPEstabResets      SeriesName = "host.tcp.estab_resets"       // established connections reset
	HostTCPInSegs           SeriesName = "host.tcp.in_segs"            // segments received
	HostTCPOutSegs          SeriesName = "host.tcp.out_segs"           // segments sent
	HostTCPRetransSegs      SeriesName = "host.tcp.retrans_segs"       // segments retransmitted
	HostTCPInErrs           SeriesName = "host.tcp.in_errs"            // segments received in error
	HostTCPOutRsts          SeriesName = "host.tcp.out_rsts"           // resets sent
	HostTCPListenOverflows  SeriesName = "host.tcp.listen_overflows"   // accept queue full
	HostTCPListenDrops      SeriesName = "host.tcp.listen_drops"       // SYNs dropped at a listener
	HostTCPTimeouts         SeriesName = "host.tcp.timeouts"           // retransmission timer expiries
	HostTCPSynRetrans       SeriesName = "host.tcp.syn_retrans"        // SYN retransmissions
	HostTCPFastRetrans      SeriesName = "host.tcp.fast_retrans"       // fast retransmissions
	HostTCPSlowStartRetrans SeriesName = "host.tcp.slow_start_retrans" // retransmissions in slow start
	HostTCPLostRetransmit   SeriesName = "host.tcp.lost_retransmit"    // retransmissions lost again
	HostTCPAbortOnTimeout   SeriesName = "host.tcp.abort_on_timeout"   // connections aborted on a timeout
	HostTCPAbortOnMemory    SeriesName = "host.tcp.abort_on_memory"    // connections aborted for socket memory
	HostTCPBacklogDrop      SeriesName = "host.tcp.backlog_drop"       // segments dropped, socket backlog full
	HostTCPReqQFullDrop     SeriesName = "host.tcp.req_q_full_drop"    // SYNs dropped, request queue full
	HostTCPOFOQueue         SeriesName = "host.tcp.ofo_queue"          // segments queued out of order
	HostTCPPruneCalled      SeriesName = "host.tcp.prune_called"       // receive queues pruned for memory
	HostTCPRcvQDrop         SeriesName = "host.tcp.rcv_q_drop"         // segments dropped, receive queue full
	HostTCPZeroWindowDrop   SeriesName = "host.tcp.zero_window_drop"   // segments dropped on a zero window
	HostTCPMemoryPressures  SeriesName = "host.tcp.memory_pressures"   // times TCP entered memory pressure
)

// Series of the watched process (process.*): the target PID, sampled at
// every interval by agent/collect's process samplers. Not the HostScan*
// series, which cover every process of a host.
const (
	ProcessCPU          SeriesName = "process.cpu"                  // cores{mode}: CPU time of all its threads
	ProcessThreads      SeriesName = "process.cpu.threads"          // count: threads now
	ProcessOnCPU        SeriesName = "process.schedstat.on_cpu"     // cores: time on a CPU (scheduler clock)
	ProcessRunDelay     SeriesName = "process.schedstat.run_delay"  // seconds/s: runnable, waiting for a CPU
	ProcessTimeslices   SeriesName = "process.schedstat.timeslices" // count/s: times put on a CPU
	ProcessRSS          SeriesName = "process.memory.rss"           // bytes: resident memory
	ProcessVMS          SeriesName = "process.memory.vms"           // bytes: virtual memory
	ProcessSwap         SeriesName = "process.memory.swap"          // bytes: swapped-out memory
	ProcessMinorFaults  SeriesName = "process.memory.minor_faults"  // count/s: page faults without I/O
	ProcessMajorFaults  SeriesName = "process.memory.major_faults"  // count/s: page faults that waited for I/O
	ProcessStorageBytes SeriesName = "process.io.storage_bytes"     // bytes/s{op}: fetched from or dirtied towards storage
	ProcessSyscallBytes SeriesName = "process.io.syscall_bytes"     // bytes/s{op}: through read- and write-like syscalls
	ProcessSyscalls     SeriesName = "process.io.syscalls"          // ops/s{op}: read and write syscalls
	ProcessCtxSwitches  SeriesName = "process.ctxsw"                // count/s{kind}: voluntary and involuntary switches
	ProcessFDs          SeriesName = "process.fds"                  // count: open file descriptors
	ProcessTCPConns     SeriesName = "process.tcp.connections"      // count{role}: established TCP connections
	ProcessTCPBytes     SeriesName = "process.tcp.bytes"            // bytes/s{role, direction}: data they carried
	ProcessTCPBusy      SeriesName = "process.tcp.busy"             // seconds/s{role}: time with data unacknowledged
	ProcessPSI          SeriesName = "process.psi"                  // seconds/s{resource, kind}: its cgroup's stall time
	ProcessPSIAvg10     SeriesName = "process.psi.avg10"            // percent{resource, kind}: the kernel's 10 s average
	// ProcessBlkioDelay (seconds/s) is in an observation split out of a
	// host's (procrank): the HostScanBlkioDelay of that process. No
	// sampler records it.
	ProcessBlkioDelay SeriesName = "process.blkio_delay"
)

// Series of the host-wide process scan (proc.*): every process of the
// host, read from /proc at the window's start and end, one series per
// process told apart by the pid and comm labels; each has one point, the
// rate over the window. Not the Process* series of the watched process.
const (
	HostScanCPU        SeriesName = "proc.cpu"         // cores{pid, comm, mode}: CPU time
	HostScanRunDelay   SeriesName = "proc.run_delay"   // seconds/s{pid, comm}: runnable, waiting for a CPU
	HostScanBlkioDelay SeriesName = "proc.blkio_delay" // seconds/s{pid, comm}: waiting on block I/O (delay accounting)
	// HostScanRSS is a gauge, not a rate: the resident memory at the
	// window's end (/proc/PID/stat's rss).
	HostScanRSS SeriesName = "proc.memory.rss" // bytes{pid, comm}: resident memory
)

// WatcherCPU (cores{mode}) is perfhound's own CPU time, read in the same
// rounds as the host's series, so that the analyzer can take it out of
// host.cpu.
const WatcherCPU SeriesName = "watcher.cpu"

// Series of a Go service's runtime (agent/goscrape), from expvar's
// memstats or the Prometheus Go client.
const (
	GoHeapAlloc     SeriesName = "go.heap.alloc"      // bytes: HeapAlloc
	GoHeapSys       SeriesName = "go.heap.sys"        // bytes: HeapSys
	GoHeapInuse     SeriesName = "go.heap.inuse"      // bytes: HeapInuse
	GoHeapObjects   SeriesName = "go.heap.objects"    // objects: HeapObjects
	GoHeapGoal      SeriesName = "go.heap.goal"       // bytes: NextGC
	GoGCCPUFraction SeriesName = "go.gc.cpu_fraction" // ratio: GCCPUFraction since the process started
	GoGoroutines    SeriesName = "go.goroutines"      // goroutines: a published goroutines count
	GoGCCount       SeriesName = "go.gc.count"        // 1/s: collections per second over the window
	GoAllocRate     SeriesName = "go.alloc.rate"      // bytes/s: TotalAlloc's rate over the window
	GoGCPause       SeriesName = "go.gc.pause"        // seconds: one point per GC that ended in the window
)

// ServiceRequests is the requests a service served, per second over the
// window: the rate of the counter its config names (go_services[].
// requests_metric), all of its label sets summed. It is the unit of work
// regression detection compares a function's cost per (analyzer/regress).
const ServiceRequests SeriesName = "service.requests"

// SeriesSpec is a catalogued series with the unit it is recorded in.
type SeriesSpec struct {
	Name SeriesName
	Unit string
}

var seriesCatalogue = [...]SeriesSpec{
	{HostCPU, "cores"}, {HostCPUCount, "count"},
	{HostLoad1, "count"}, {HostLoad5, "count"}, {HostLoad15, "count"},
	{HostProcsRunning, "count"}, {HostProcsBlocked, "count"},
	{HostMemTotal, "bytes"}, {HostMemAvailable, "bytes"}, {HostMemFree, "bytes"}, {HostMemCached, "bytes"},
	{HostMemBuffers, "bytes"}, {HostMemDirty, "bytes"}, {HostMemWriteback, "bytes"},
	{HostSwapTotal, "bytes"}, {HostSwapUsed, "bytes"},
	{HostPageFaults, "count/s"}, {HostMajorFaults, "count/s"}, {HostSwapIn, "count/s"}, {HostSwapOut, "count/s"},
	{HostReclaimScan, "count/s"}, {HostReclaimSteal, "count/s"}, {HostOOMKills, "count/s"},
	{HostDiskOps, "ops/s"}, {HostDiskBytes, "bytes/s"}, {HostDiskAwait, "seconds"}, {HostDiskUtil, "ratio"},
	{HostDiskQueue, "count"}, {HostDiskInFlight, "count"},
	{HostNetBytes, "bytes/s"}, {HostNetPackets, "count/s"}, {HostNetErrors, "count/s"}, {HostNetDrops, "count/s"},
	{HostTCPActiveOpens, "count/s"}, {HostTCPPassiveOpens, "count/s"}, {HostTCPAttemptFails, "count/s"},
	{HostTCPEstabResets, "count/s"}, {HostTCPInSegs, "count/s"}, {HostTCPOutSegs, "count/s"},
	{HostTCPRetransSegs, "count/s"}, {HostTCPInErrs, "count/s"}, {HostTCPOutRsts, "count/s"},
	{HostTCPCurrEstab, "count"}, {HostTCPRetransRatio, "ratio"},
	{HostTCPListenOverflows, "count/s"}, {HostTCPListenDrops, "count/s"}, {HostTCPTimeouts, "count/s"},
	{HostTCPSynRetrans, "count/s"}, {HostTCPFastRetrans, "count/s"}, {HostTCPSlowStartRetrans, "count/s"},
	{HostTCPLostRetransmit, "count/s"}, {HostTCPAbortOnTimeout, "count/s"}, {HostTCPAbortOnMemory, "count/s"},
	{HostTCPBacklogDrop, "count/s"}, {HostTCPReqQFullDrop, "count/s"}, {HostTCPOFOQueue, "count/s"},
	{HostTCPPruneCalled, "count/s"}, {HostTCPRcvQDrop, "count/s"}, {HostTCPZeroWindowDrop, "count/s"},
	{HostTCPMemoryPressures, "count/s"},
	{HostPSI, "seconds/s"}, {HostPSIAvg10, "percent"},
	{ProcessCPU, "cores"}, {ProcessThreads, "count"},
	{ProcessOnCPU, "cores"}, {ProcessRunDelay, "seconds/s"}, {ProcessTimeslices, "count/s"},
	{ProcessRSS, "bytes"}, {ProcessVMS, "bytes"}, {ProcessSwap, "bytes"},
	{ProcessMinorFaults, "count/s"}, {ProcessMajorFaults, "count/s"},
	{ProcessStorageBytes, "bytes/s"}, {ProcessSyscallBytes, "bytes/s"}, {ProcessSyscalls, "ops/s"},
	{ProcessCtxSwitches, "count/s"}, {ProcessFDs, "count"},
	{ProcessTCPConns, "count"}, {ProcessTCPBytes, "bytes/s"}, {ProcessTCPBusy, "seconds/s"},
	{ProcessPSI, "seconds/s"}, {ProcessPSIAvg10, "percent"}, {ProcessBlkioDelay, "seconds/s"},
	{HostScanCPU, "cores"}, {HostScanRunDelay, "seconds/s"}, {HostScanBlkioDelay, "seconds/s"},
	{HostScanRSS, "bytes"},
	{WatcherCPU, "cores"},
	{GoHeapAlloc, "bytes"}, {GoHeapSys, "bytes"}, {GoHeapInuse, "bytes"}, {GoHeapObjects, "objects"},
	{GoHeapGoal, "bytes"}, {GoGCCPUFraction, "ratio"}, {GoGoroutines, "goroutines"},
	{GoGCCount, "1/s"}, {GoAllocRate, "bytes/s"}, {GoGCPause, "seconds"},
	{ServiceRequests, "1/s"},
}

// Catalogue lists every series name with its unit.
func Catalogue() []SeriesSpec { return append([]SeriesSpec(nil), seriesCatalogue[:]...) }

// Unit is the unit a catalogued series is recorded in, "" for a name not
// in the catalogue.
func (n SeriesName) Unit() string { return seriesUnits[n] }

// seriesUnits is the catalogue by name: collectors look a unit up at
// every new series of every reading.
var seriesUnits = func() map[SeriesName]string {
	m := make(map[SeriesName]string, len(seriesCatalogue))
	for _, s := range seriesCatalogue {
		m[s.Name] = s.Unit
	}
	return m
}()

// HistogramName names a log2 histogram of the eBPF collectors.
type HistogramName string

// Histograms, each labelled with the pid and comm of the process.
const (
	HistRunQueue    HistogramName = "runq.latency"  // nanoseconds: runnable to running
	HistBlockIO     HistogramName = "block.latency" // nanoseconds{device, name, op}: block request issue to completion
	HistBlockSize   HistogramName = "block.size"    // bytes{device, name, op}: block request sizes
	HistTCPConnect  HistogramName = "tcp.connect"   // nanoseconds{peer, passive}: connect to established
	HistTCPLifetime HistogramName = "tcp.lifetime"  // nanoseconds{peer, passive}: established to closed
)

// Histograms lists every histogram name with its unit.
func Histograms() []HistogramSpec {
	return []HistogramSpec{
		{HistRunQueue, "nanoseconds"}, {HistBlockIO, "nanoseconds"}, {HistBlockSize, "bytes"},
		{HistTCPConnect, "nanoseconds"}, {HistTCPLifetime, "nanoseconds"},
	}
}

// HistogramSpec is a catalogued histogram with its unit.
type HistogramSpec struct {
	Name HistogramName
	Unit string
}

// ProfileKind says what a profile's samples measure.
type ProfileKind string

// Profile kinds.
const (
	KindCPU        ProfileKind = "cpu"        // on-CPU time
	KindOffCPU     ProfileKind = "offcpu"     // off-CPU time by state
	KindPageFaults ProfileKind = "faults"     // page faults
	KindHeap       ProfileKind = "heap"       // Go heap: inuse and alloc
	KindAllocs     ProfileKind = "allocs"     // Go allocations
	KindGoroutine  ProfileKind = "goroutine"  // Go goroutines by stack
	KindBlock      ProfileKind = "block"      // Go blocking on channels, selects, mutexes
	KindMutex      ProfileKind = "mutex"      // Go mutex contention
	KindContention ProfileKind = "contention" // Go block or mutex, not told which (pushed without a config)
	// KindThreadState is every thread's state sampled from /proc many
	// times a second (running, or why it sleeps: its kernel function,
	// system call and file descriptor): the off-CPU view without eBPF.
	KindThreadState ProfileKind = "threadstate"
)

// Snapshot tells whether a profile of the kind is the state at one moment
// (a gauge: a Go heap's objects and bytes in use, the goroutines alive)
// rather than what happened during its window (a count: CPU time,
// allocations, contention). Merge averages snapshots over time and sums
// the others: ten windows of a 50 MiB heap are a 50 MiB heap, not 500.
// A heap profile's alloc_* columns, cumulative since the process started,
// are averaged with its in-use ones: the allocs profile, a delta per
// window, is the one to read for allocation.
func (k ProfileKind) Snapshot() bool { return k == KindHeap || k == KindGoroutine }

// ProfileKinds lists every profile kind.
func ProfileKinds() []ProfileKind {
	return []ProfileKind{KindCPU, KindOffCPU, KindPageFaults, KindHeap, KindAllocs, KindGoroutine, KindBlock, KindMutex, KindContention,
		KindThreadState}
}

// ProfileSource names the collector that made a profile.
type ProfileSource string

// Profile sources.
const (
	SourceEBPF   ProfileSource = "ebpf"   // perfhound's eBPF collectors (bpf/)
	SourcePprof  ProfileSource = "pprof"  // a Go service's net/http/pprof endpoint (agent/goscrape)
	SourceIngest ProfileSource = "ingest" // pushed by a Pyroscope SDK (agent/ingest)
	SourceProcFS ProfileSource = "procfs" // sampled from /proc by perfhound (agent/collect)
)

// ProfileLabelGo labels a profile of one process (a threadstate profile)
// with the Go version its executable was built with: a Go program's
// runtime parks its idle threads on futexes, and its netpoller waits in
// epoll, itself. A threadstate profile's samples carry it too, each for
// its own process (the target's descendants are sampled with it).
const ProfileLabelGo = "go"

// ProfileSources lists every profile source.
func ProfileSources() []ProfileSource {
	return []ProfileSource{SourceEBPF, SourcePprof, SourceIngest, SourceProcFS}
}

// Signal names what was collected, or not: a collector (a /proc sampler of
// agent/collect, an eBPF collector, a Go service's endpoint, the ingest)
// or a part of one. It is the Signal of a Missing entry and the source a
// verdict cites for a number. A series that could not be read on its own
// is missing under the series' name (Signal(name)), and a profile under
// its source and kind (ProfileSignal).
type Signal string

// Sub names a part of what s names: "host.psi" and "cpu" give
// "host.psi.cpu", "ebpf" and "oncpu" "ebpf.oncpu".
func (s Signal) Sub(part string) Signal { return s + "." + Signal(part) }

// ProfileSignal names a profile of a source and kind as a signal:
// "pprof.mutex", "ingest.goroutine".
func ProfileSignal(source ProfileSource, kind ProfileKind) Signal {
	return Signal(source).Sub(string(kind))
}

// The samplers of agent/collect, one per file, by the name they register
// under; a sampler that records one series family is named as its series.
const (
	SignalHostCPU            Signal = Signal(HostCPU)            // /proc/stat CPU times
	SignalHostLoad           Signal = "host.load"                // load averages, runnable and blocked tasks
	SignalHostMemory         Signal = "host.memory"              // /proc/meminfo and /proc/vmstat
	SignalHostDisk           Signal = "host.disk"                // /proc/diskstats
	SignalHostNet            Signal = "host.net"                 // /proc/net/dev
	SignalHostTCP            Signal = "host.tcp"                 // /proc/net/snmp and /proc/net/netstat
	SignalHostTCPExt         Signal = SignalHostTCP + ".ext"     // its TcpExt part, /proc/net/netstat
	SignalHostPSI            Signal = Signal(HostPSI)            // /proc/pressure
	SignalProcessCPU         Signal = Signal(ProcessCPU)         // /proc/PID/stat CPU times
	SignalProcessMemory      Signal = "process.memory"           // /proc/PID/status and stat: memory, faults
	SignalProcessIO          Signal = "process.io"               // /proc/PID/io
	SignalProcessSchedstat   Signal = "process.schedstat"        // /proc/PID/task/*/schedstat
	SignalProcessCtxSwitches Signal = Signal(ProcessCtxSwitches) // /proc/PID/task/*/status
	SignalProcessFDs         Signal = Signal(ProcessFDs)         // /proc/PID/fd
	SignalProcessTCP         Signal = "process.tcp"              // its TCP connections' tcp_info (sock_diag)
	SignalProcessPSI         Signal = Signal(ProcessPSI)         // its cgroup's pressure files
	SignalWatcherCPU         Signal = Signal(WatcherCPU)         // getrusage of perfhound itself
)

// What else a window collects, or records as missing.
const (
	SignalProcess  Signal = "process" // the watched process: it exited, its series end there
	SignalHostScan Signal = "proc"    // the host-wide process scan (the proc.* series)
	SignalWindow   Signal = "window"  // the window: cut short by an interrupt
	SignalCommand  Signal = "command" // a command run and watched: its exit, or its end by the window

	SignalEBPF        Signal = Signal(SourceEBPF)      // the eBPF collectors as a whole
	SignalEBPFOnCPU   Signal = SignalEBPF + ".oncpu"   // on-CPU stacks
	SignalEBPFOffCPU  Signal = SignalEBPF + ".offcpu"  // off-CPU stacks and thread states
	SignalEBPFRunQLat Signal = SignalEBPF + ".runqlat" // run-queue latency (histogram runq.latency)
	SignalEBPFBioLat  Signal = SignalEBPF + ".biolat"  // block I/O latency (histograms block.*)
	SignalEBPFTCP     Signal = SignalEBPF + ".tcp"     // TCP connections (histograms tcp.*)
	SignalEBPFFaults  Signal = SignalEBPF + ".faults"  // page-fault stacks
	SignalEBPFSymbols Signal = SignalEBPF + ".symbols" // stack symbolization
	SignalEBPFUnwind  Signal = SignalEBPF + ".unwind"  // user stacks walked by .eh_frame tables

	SignalPprof          Signal = Signal(SourcePprof)                       // a Go service's net/http/pprof endpoint
	SignalPprofCPU       Signal = SignalPprof + "." + Signal(KindCPU)       // its CPU profile
	SignalPprofHeap      Signal = SignalPprof + "." + Signal(KindHeap)      // its heap profile
	SignalPprofAllocs    Signal = SignalPprof + "." + Signal(KindAllocs)    // its allocation profile
	SignalPprofGoroutine Signal = SignalPprof + "." + Signal(KindGoroutine) // its goroutine profile
	SignalPprofBlock     Signal = SignalPprof + "." + Signal(KindBlock)     // its block profile
	SignalPprofMutex     Signal = SignalPprof + "." + Signal(KindMutex)     // its mutex profile
	SignalGoExpvar       Signal = "go.expvar"                               // its runtime series (expvar or Prometheus)

	SignalIngest Signal = Signal(SourceIngest) // profiles pushed through the ingest

	SignalThreadStates Signal = Signal(SourceProcFS) + "." + Signal(KindThreadState) // thread states sampled from /proc
)

// Signals lists every catalogued signal.
func Signals() []Signal {
	return []Signal{
		SignalHostCPU, SignalHostLoad, SignalHostMemory, SignalHostDisk, SignalHostNet, SignalHostTCP, SignalHostTCPExt,
		SignalHostPSI, SignalProcessCPU, SignalProcessMemory, SignalProcessIO, SignalProcessSchedstat,
		SignalProcessCtxSwitches, SignalProcessFDs, SignalProcessTCP, SignalProcessPSI, SignalWatcherCPU,
		SignalProcess, SignalHostScan, SignalWindow, SignalCommand,
		SignalEBPF, SignalEBPFOnCPU, SignalEBPFOffCPU, SignalEBPFRunQLat, SignalEBPFBioLat, SignalEBPFTCP,
		SignalEBPFFaults, SignalEBPFSymbols, SignalEBPFUnwind,
		SignalPprof, SignalPprofCPU, SignalPprofHeap, SignalPprofAllocs, SignalPprofGoroutine, SignalPprofBlock,
		SignalPprofMutex, SignalGoExpvar,
		SignalIngest, SignalThreadStates,
	}
}
