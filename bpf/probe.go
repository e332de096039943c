//go:build linux && amd64

package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Capability bits (linux/capability.h).
const (
	capSysPtrace = 19
	capSysAdmin  = 21
	capPerfmon   = 38
	capBPF       = 39
)

// tracepoints each collector attaches to, as BTF names the kernel gives
// them (btf_trace_<event>).
var collectorTracepoints = map[Collector][]string{
	OffCPU:     {"sched_switch", "sched_process_free"},
	RunQueue:   {"sched_wakeup", "sched_wakeup_new", "sched_switch", "sched_process_free"},
	BlockIO:    {"block_io_start", "block_rq_issue", "block_rq_complete"},
	TCP:        {"inet_sock_set_state", "tcp_retransmit_skb"},
	PageFaults: {"page_fault_user"},
}

// lifecycleTracepoints are what the process-lifecycle object (procs)
// attaches to; the stack collectors load it, to symbolize processes that
// exit young and to follow children.
var lifecycleTracepoints = []string{"sched_process_exec", "sched_process_fork", "sched_process_exit"}

// Probe checks, without loading anything, what this host allows:
// architecture, privileges, BTF, program and map types, and the
// tracepoints each collector needs. It mounts tracefs when it is absent
// and we are allowed to.
func Probe() Support {
	s := Support{Collectors: map[Collector]error{}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		s.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	fail := func(err error) Support {
		for _, c := range AllCollectors {
			s.Collectors[c] = err
		}
		return s
	}
	caps, err := effectiveCaps()
	if err != nil {
		return fail(err)
	}
	if !caps.has(capSysAdmin) && !(caps.has(capBPF) && caps.has(capPerfmon)) {
		return fail(ErrPrivileges)
	}
	if !caps.has(capSysAdmin) && !caps.has(capSysPtrace) {
		s.Notes = append(s.Notes, "no CAP_SYS_PTRACE: other users' processes cannot be symbolized (their /proc/PID/maps is unreadable)")
	}
	cache := btf.NewCache()
	spec, err := cache.Kernel()
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNoBTF, err))
	}
	s.Tracefs, err = ensureTracefs()
	if err != nil {
		s.Notes = append(s.Notes, err.Error())
	}
	if note := kallsymsNote(); note != "" {
		s.Notes = append(s.Notes, note)
	}

	tracing := probeTPBTF()
	for _, c := range AllCollectors {
		s.Collectors[c] = nil
		if c == OnCPU {
			if err := probePerfEvent(); err != nil {
				s.Collectors[c] = err
				continue
			}
		}
		if tracing != nil {
			s.Collectors[c] = fmt.Errorf("tp_btf programs: %w", tracing)
			continue
		}
		tps := collectorTracepoints[c]
		if c == OnCPU || c == OffCPU || c == PageFaults {
			tps = append(tps[:len(tps):len(tps)], lifecycleTracepoints...)
		}
		for _, tp := range tps {
			if _, err := spec.AnyTypeByName("btf_trace_" + tp); err != nil {
				s.Collectors[c] = fmt.Errorf("kernel has no %s tracepoint", tp)
				break
			}
		}
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		for _, c := range []Collector{OnCPU, OffCPU, PageFaults} {
			if s.Collectors[c] == nil {
				s.Collectors[c] = fmt.Errorf("no BPF ring buffer (kernel older than 5.8), needed to follow processes: %w", err)
			}
		}
	}
	keepKernelBTF(cache)
	return s
}

// The kernel's BTF takes tens of milliseconds of CPU to parse, and a
// diagnosis probes and then starts a session straight away: Probe leaves
// the parsed types for the next session to take, so that they are parsed
// once, and the session drops them once loaded, so that a long-running
// agent does not keep them.
var probedBTF struct {
	sync.Mutex
	cache *btf.Cache
}

func keepKernelBTF(c *btf.Cache) {
	probedBTF.Lock()
	probedBTF.cache = c
	probedBTF.Unlock()
}

// takeKernelBTF returns the types the last Probe parsed, once, or a new
// cache.
func takeKernelBTF() *btf.Cache {
	probedBTF.Lock()
	defer probedBTF.Unlock()
	c := probedBTF.cache
	probedBTF.cache = nil
	if c == nil {
		c = btf.NewCache()
	}
	return c
}

// probeTPBTF loads, then unloads, an empty tp_btf program on
// sched_switch. features.HaveProgramType(ebpf.Tracing) is no substitute:
// it probes with fentry, which kernels without ftrace trampolines refuse
// although tp_btf works.
func probeTPBTF() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "sched_switch",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// probePerfEvent opens, then closes, a cpu-clock sampling event on CPU 0.
func probePerfEvent() error {
	if err := features.HaveProgramType(ebpf.PerfEvent); err != nil {
		return fmt.Errorf("perf_event programs: %w", err)
	}
	fd, err := openCPUClock(0, 1)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

type capSet uint64

func (c capSet) has(bit uint) bool { return c&(1<<bit) != 0 }

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (capSet, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("reading capabilities: CapEff %q: %w", v, err)
			}
			return capSet(n), nil
		}
	}
	return 0, errors.New("reading capabilities: no CapEff in /proc/self/status")
}

// kallsymsNote explains hidden kernel symbols, or returns "".
func kallsymsNote() string {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return "kernel symbols unreadable: " + err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 100 && sc.Scan(); i++ {
		if addr, _, _ := strings.Cut(sc.Text(), " "); strings.Trim(addr, "0") != "" {
			return ""
		}
	}
	return "kernel symbols hidden (/proc/kallsyms shows zero addresses; kernel.kptr_restrict): kernel frames stay unnamed"
}

// ensureTracefs returns where tracefs is mounted, mounting it at
// /sys/kernel/tracing when it is not (tracepoint tools such as perf and
// bpftrace expect it; our tp_btf programs do not need it).
func ensureTracefs() (string, error) {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return dir, nil
		}
	}
	const dir = "/sys/kernel/tracing"
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("tracefs not mounted and mounting it at %s failed: %v", dir, err)
	}
	return dir, nil
}
