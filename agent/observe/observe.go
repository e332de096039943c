// Package observe assembles observations from what the collectors return:
// eBPF windows, metric series, scraped and pushed profiles, and the host's
// identity. diagnose and the agent build every observation through here,
// so both describe the same things the same way.
//
// A Watcher watches one target for as long as it lives:
//
//	w, err := observe.Start(ctx, opts) // once: check the target, start the collectors
//	defer w.Close()                    // must be called: frees what Start took
//	for {
//		o, err := w.Window(ctx, d)     // again and again: one observation each
//	}
//
// Start loads and attaches the eBPF programs, opens the samplers, reads
// the process table (a host) and probes the Go service (a URL). Each
// Window returns one observation; windows tile time, each beginning where
// the previous one ended, so what happens between two calls is in the
// second (but for a Go service's CPU profile, taken from the call). What
// carries over from window to window: the eBPF session and its
// symbolizer's caches, the recorder's counter baselines, the process
// scan's last reading, and the scraper's last cumulative profiles and
// runtime statistics; nothing is loaded twice. The first window starts at
// its call: what was gathered between Start and then is dropped.
//
// Close releases the eBPF programs, maps, links and perf events (all file
// descriptors), the symbolizer's caches and the scraper's connections;
// without it they outlive the watcher. One Window runs at a time; Close
// may be called from any goroutine, during a Window too, which it cuts
// short and waits for. Watch is Start, one Window and Close.
package observe

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/bpf"
)

// FromBPF adds an eBPF window to o: its profiles (source "ebpf"), its
// histograms (run-queue, block I/O and TCP latencies, by process), the
// counters of lost events as missing entries when anything was lost, and
// the window's bounds when o has none.
func FromBPF(o *observation.Observation, w *bpf.Window) {
	add := func(kind observation.ProfileKind, p *profile.Profile) {
		if p != nil {
			o.Profiles = append(o.Profiles, observation.Profile{Kind: kind, Source: observation.SourceEBPF, Profile: p})
		}
	}
	add(observation.KindCPU, w.OnCPU)
	add(observation.KindOffCPU, w.OffCPU)
	add(observation.KindPageFaults, w.PageFaults)

	hist := func(name observation.HistogramName, unit string, labels map[string]string, h bpf.Histogram) {
		if h.Count == 0 {
			return
		}
		o.Histograms = append(o.Histograms, observation.Histogram{
			Name: name, Unit: unit, Labels: labels,
			Slots: trimSlots(h.Slots[:]), Count: h.Count, Sum: h.Sum,
		})
	}
	for _, r := range w.RunQueue {
		hist(observation.HistRunQueue, "nanoseconds", procLabels(r.PID, r.Comm), r.Latency)
	}
	for _, b := range w.BlockIO {
		l := procLabels(b.PID, b.Comm)
		l["device"], l["name"], l["op"] = b.Device, b.Name, b.Op
		if b.Errors > 0 {
			l["errors"] = strconv.FormatUint(b.Errors, 10)
		}
		hist(observation.HistBlockIO, "nanoseconds", l, b.Latency)
		hist(observation.HistBlockSize, "bytes", l, b.Bytes)
	}
	for _, c := range w.TCP {
		l := procLabels(c.PID, c.Comm)
		l["peer"] = c.Peer.String()
		if c.Passive {
			l["passive"] = "true"
		}
		for k, v := range map[string]uint64{"failures": c.Failures, "retransmits": c.Retransmits, "bytes_sent": c.BytesSent, "bytes_received": c.BytesReceived} {
			if v > 0 {
				l[k] = strconv.FormatUint(v, 10)
			}
		}
		hist(observation.HistTCPConnect, "nanoseconds", l, c.Connect)
		hist(observation.HistTCPLifetime, "nanoseconds", l, c.Lifetime)
	}

	var lost []string
	for _, name := range sortedKeys(w.Counters) {
		if isLoss(name) && w.Counters[name] > 0 {
			lost = append(lost, fmt.Sprintf("%s %d", name, w.Counters[name]))
		}
	}
	if len(lost) > 0 {
		o.Missing = append(o.Missing, observation.EventsLost(lost))
	}
	if s := w.Symbolization; s.UnknownPIDSamples > 0 {
		o.Missing = append(o.Missing, observation.Missing{
			Signal: observation.SignalEBPFSymbols,
			Reason: fmt.Sprintf("%d samples of processes that exited before their binaries could be read are unnamed", s.UnknownPIDSamples),
		})
	}
	if o.Meta.Start.IsZero() {
		o.Meta.Start, o.Meta.Duration = w.Start, w.End.Sub(w.Start)
	}
}

// isLoss tells the counters that count lost events (see bpf.Window).
func isLoss(name string) bool {
	for _, s := range []string{"_full", "_lost", ".missing"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// FromSupport records the eBPF collectors that could not run, and why.
func FromSupport(o *observation.Observation, s bpf.Support) {
	for _, c := range bpf.AllCollectors {
		if err := s.Collectors[c]; err != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: collectorSignal(c), Reason: err.Error()})
		}
	}
}

// collectorSignal names an eBPF collector as the catalogue does:
// "ebpf.oncpu". bpf does not import the analyzer, so the two lists are held
// together by TestCollectorSignals.
func collectorSignal(c bpf.Collector) observation.Signal {
	return observation.SignalEBPF.Sub(string(c))
}

func procLabels(pid uint32, comm string) map[string]string {
	l := map[string]string{"pid": strconv.FormatUint(uint64(pid), 10)}
	if comm != "" {
		l["comm"] = comm
	}
	return l
}

// trimSlots drops the empty buckets at the top of a log2 histogram.
func trimSlots(s []uint64) []uint64 {
	n := len(s)
	for n > 0 && s[n-1] == 0 {
		n--
	}
	return append([]uint64(nil), s[:n]...)
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Host fills the host's identity into meta: name, kernel, CPUs, memory,
// read from env's /proc.
func Host(meta *observation.Meta, env collect.Env) {
	procfs := env.ProcDir()
	// From procfs, not from this process: the agent may run in a
	// container, limited to a few CPUs, with the host's /proc mounted.
	if b, err := os.ReadFile(procfs + "/sys/kernel/hostname"); err == nil {
		meta.Host = strings.TrimSpace(string(b))
	} else {
		meta.Host, _ = os.Hostname()
	}
	if b, err := os.ReadFile(procfs + "/sys/kernel/osrelease"); err == nil {
		meta.Kernel = strings.TrimSpace(string(b))
	}
	meta.CPUs = onlineCPUs(procfs)
	if b, err := os.ReadFile(procfs + "/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				meta.Memory = kb << 10
			}
		}
	}
}

// onlineCPUs counts the cpuN lines of procfs/stat (the CPUs the kernel
// runs), falling back to what this process may use.
func onlineCPUs(procfs string) int {
	b, err := os.ReadFile(procfs + "/stat")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 3 && strings.HasPrefix(line, "cpu") && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// Collector records a collector and its version in meta: perfhound's own
// version for our code, the module version for a library (gopsutil,
// cilium/ebpf), as the binary was built with them.
func Collector(meta *observation.Meta, name, module string) {
	if meta.Collectors == nil {
		meta.Collectors = map[string]string{}
	}
	meta.Collectors[name] = moduleVersion(module)
}

func moduleVersion(module string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if module == "" || module == info.Main.Path {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == module {
			return d.Version
		}
	}
	return "unknown"
}
