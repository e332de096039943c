//go:build linux

// Command bpfwatch runs perfhound's eBPF collectors on their own, for a
// fixed time, and writes what they gathered: the profiles as .pb.gz (open
// them with `go tool pprof`) and the histograms and counters as JSON. It is
// what the overhead benchmark runs beside a workload, and a way to look at
// the collectors without the rest of perfhound.
//
//	bpfwatch -duration 10s -freq 99 -out /tmp/w       # the whole host
//	bpfwatch -pid 1234 -collectors oncpu,offcpu -out /tmp/w
//	bpfwatch -agent -duration 60s -window 10s      # as the agent collects
//	bpfwatch -native -pid 1234 -out /tmp/w           # native code without frame pointers
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/bpf"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bpfwatch:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 10*time.Second, "how long to collect")
	window := flag.Duration("window", 0, "read a window this often (default: once, at the end)")
	freq := flag.Int("freq", bpf.DiagnoseFrequency, "on-CPU sampling frequency, Hz")
	offSampling := flag.Int("offcpu-sampling", 1, "follow one off-CPU switch in this many, at random")
	agent := flag.Bool("agent", false, fmt.Sprintf("the agent's settings: -freq %d -offcpu-sampling %d", bpf.AgentFrequency, bpf.AgentOffCPUSampling))
	pids := flag.String("pid", "", "comma-separated pids to watch (default: every process)")
	collectors := flag.String("collectors", "", "comma-separated collectors (default: all): oncpu,offcpu,runqlat,biolat,tcp,faults")
	out := flag.String("out", "", "directory to write the last window to (default: nothing written)")
	native := flag.Bool("native", false, "walk user stacks by .eh_frame tables where a process's code has them (bpf.Options.NativeUnwind)")
	bpfStats := flag.Bool("bpf-stats", false, "enable kernel BPF run-time statistics and report the programs' cost")
	cpuProfile := flag.String("cpuprofile", "", "write bpfwatch's own CPU profile to this file")
	warmup := flag.Duration("warmup", 0, "collect this long and read once before counting the cost: the processes already running met, their objects parsed and tables built, as in an agent that has run a while")
	flag.Parse()

	// The CPU profile covers what the cost line counts: from the end of
	// the warm-up (or the start) to the end.
	var profileFile *os.File
	startProfile := func() error {
		if *cpuProfile == "" {
			return nil
		}
		var err error
		if profileFile, err = os.Create(*cpuProfile); err != nil {
			return err
		}
		return pprof.StartCPUProfile(profileFile)
	}
	defer func() {
		if profileFile != nil {
			pprof.StopCPUProfile()
			profileFile.Close()
		}
	}()
	if *warmup == 0 {
		if err := startProfile(); err != nil {
			return err
		}
	}

	opts := bpf.Options{Frequency: *freq, OffCPUSampling: *offSampling, NativeUnwind: *native}
	if *agent {
		opts.Frequency, opts.OffCPUSampling = bpf.AgentFrequency, bpf.AgentOffCPUSampling
	}
	for _, f := range strings.FieldsFunc(*pids, func(r rune) bool { return r == ',' }) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("-pid: %q is not a pid", f)
		}
		opts.PIDs = append(opts.PIDs, pid)
	}
	for _, c := range strings.FieldsFunc(*collectors, func(r rune) bool { return r == ',' }) {
		opts.Collectors = append(opts.Collectors, bpf.Collector(c))
	}
	if support := bpf.Probe(); !support.Available() {
		return fmt.Errorf("eBPF unavailable: %s", strings.Join(support.Missing(), "; "))
	}
	if *bpfStats {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			return fmt.Errorf("-bpf-stats: %w", err)
		}
		defer stats.Close()
	}
	start := time.Now()
	s, err := bpf.Start(opts)
	if err != nil {
		return err
	}
	defer s.Close()
	var warm []bpf.ProgramStats
	if *warmup > 0 {
		// The overhead benchmark runs its program once during the
		// warm-up, from this line on.
		fmt.Fprintln(os.Stderr, "bpfwatch: warming up")
		time.Sleep(*warmup)
		if _, err := s.Read(); err != nil {
			return err
		}
		if *bpfStats {
			if warm, err = s.ProgramStats(); err != nil {
				return err
			}
		}
		if err := startProfile(); err != nil {
			return err
		}
	}
	startCPU := cpuTime()
	// The overhead benchmark waits for this line before starting its
	// workload.
	fmt.Fprintln(os.Stderr, "bpfwatch: collecting")
	defer reportCost(s, start, startCPU, *bpfStats, warm)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	end := time.After(*duration)
	var tick <-chan time.Time
	if *window > 0 {
		t := time.NewTicker(*window)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			w, err := s.Read()
			if err != nil {
				return err
			}
			summarize(w)
			continue
		case <-stop:
		case <-end:
		}
		break
	}
	w, err := s.Read()
	if err != nil {
		return err
	}
	summarize(w)
	if *out != "" {
		return write(w, *out)
	}
	return nil
}

func summarize(w *bpf.Window) {
	n := func(p *profile.Profile) int {
		if p == nil {
			return 0
		}
		return len(p.Sample)
	}
	fmt.Fprintf(os.Stderr, "window %s–%s: %d on-CPU, %d off-CPU, %d fault stacks; %d run-queue, %d block I/O, %d TCP records; counters %v\n",
		w.Start.Format("15:04:05.000"), w.End.Format("15:04:05.000"), n(w.OnCPU), n(w.OffCPU), n(w.PageFaults),
		len(w.RunQueue), len(w.BlockIO), len(w.TCP), w.Counters)
}

func write(w *bpf.Window, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for name, p := range map[string]*profile.Profile{"oncpu": w.OnCPU, "offcpu": w.OffCPU, "faults": w.PageFaults} {
		if p == nil {
			continue
		}
		f, err := os.Create(filepath.Join(dir, name+".pb.gz"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, p.Write(f), f.Close())
	}
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "window.json"), b, 0o644))
	return errors.Join(errs...)
}

// reportCost prints the collector's own cost: its CPU time and peak RSS
// (getrusage), and with -bpf-stats the time the kernel spent in its
// programs, which the profiled tasks pay, less what they ran before (the
// warm-up's stats). The overhead benchmark reads the "cost:" line.
func reportCost(s *bpf.Session, start time.Time, startCPU time.Duration, bpfStats bool, before []bpf.ProgramStats) {
	var kernel time.Duration
	var runs uint64
	if bpfStats {
		stats, err := s.ProgramStats()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bpfwatch:", err)
		}
		was := map[string]bpf.ProgramStats{}
		for _, st := range before {
			was[st.Name] = st
		}
		for _, st := range stats {
			st.Runtime -= was[st.Name].Runtime
			st.RunCount -= was[st.Name].RunCount
			kernel += st.Runtime
			runs += st.RunCount
			if st.RunCount > 0 {
				fmt.Fprintf(os.Stderr, "program %s: %d runs, %.3f s, %.0f ns a run\n",
					st.Name, st.RunCount, st.Runtime.Seconds(), float64(st.Runtime.Nanoseconds())/float64(st.RunCount))
			}
		}
	}
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	wall := time.Since(start)
	cpu := cpuTime()
	fmt.Fprintf(os.Stderr, "cost: wall_s=%.3f cpu_s=%.3f start_cpu_s=%.3f maxrss_kib=%d rss_kib=%d bpf_s=%.3f bpf_runs=%d\n",
		wall.Seconds(), cpu.Seconds(), startCPU.Seconds(), ru.Maxrss, currentRSS(), kernel.Seconds(), runs)
}

// cpuTime is this process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// currentRSS reads VmRSS from /proc/self/status, in KiB.
func currentRSS() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
