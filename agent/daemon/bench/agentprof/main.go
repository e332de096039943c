// Command agentprof runs the agent's loop (agent/daemon, at the config's
// defaults, without the HTTP server) under Go's own profilers, to find
// where the agent's CPU and memory go: a CPU profile of the steady part
// (after -warmup), a heap profile and the runtime's memory statistics at
// the end. The product serves no /debug/pprof; this is the same loop in a
// binary that does nothing else. Run as root for eBPF, beside a load,
// with cmd/perfhound's soft memory limit (GOMEMLIMIT), which changes how
// often the collector runs. Go's profiler samples at 100 Hz; a higher
// rate (runtime.SetCPUProfileRate) does not help, since its per-thread
// CPU timers are checked at the kernel's clock ticks (CONFIG_HZ, 250
// here): at 1000 Hz a 5-minute profile held 0.14% of a core where /proc
// counts 0.4-0.5% under the same load. Run it longer instead.
//
//	go build -o /tmp/agentprof ./agent/daemon/bench/agentprof
//	GOMEMLIMIT=48MiB timeout 900 /tmp/agentprof -data /tmp/agentprof.data -warmup 1m -d 5m -out /tmp/agentprof
//	go tool pprof -top /tmp/agentprof/cpu.pprof
//	go tool pprof -sample_index=alloc_space -base /tmp/agentprof/heap-start.pprof -top /tmp/agentprof/heap.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/perfhound/perfhound/agent/config"
	"github.com/perfhound/perfhound/agent/daemon"
)

func main() {
	data := flag.String("data", "", "the store's directory (required; use a fresh one)")
	warmup := flag.Duration("warmup", time.Minute, "time before the CPU profile starts")
	d := flag.Duration("d", 5*time.Minute, "how long the CPU profile runs")
	out := flag.String("out", ".", "directory for cpu.pprof, heap.pprof and heap-start.pprof")
	flag.Parse()
	if *data == "" {
		fmt.Fprintln(os.Stderr, "agentprof: -data is required")
		os.Exit(2)
	}
	if err := run(*data, *out, *warmup, *d); err != nil {
		fmt.Fprintln(os.Stderr, "agentprof:", err)
		os.Exit(1)
	}
}

func run(data, out string, warmup, d time.Duration) error {
	cfg := config.Default()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dm, err := daemon.New(ctx, daemon.Options{
		Interval: time.Duration(cfg.Interval), EBPF: cfg.EBPF.Enabled,
		Frequency: cfg.EBPF.Frequency, OffCPUSampling: cfg.EBPF.OffCPUSampling, NativeUnwind: cfg.EBPF.NativeUnwind,
		DataDir: data, Live: daemon.Live{Window: time.Duration(cfg.Window)},
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- dm.Run(ctx) }()
	time.Sleep(warmup)

	// The heap profile's allocation counts are since the start: the one
	// taken here, as -base, leaves those of the profiled span.
	if err := writeHeap(filepath.Join(out, "heap-start.pprof")); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "cpu.pprof"))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	time.Sleep(d)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return err
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap in use %.1f MiB, heap sys %.1f MiB, total sys %.1f MiB, GCs %d, allocated over the run %.0f MiB\n",
		float64(ms.HeapInuse)/(1<<20), float64(ms.HeapSys)/(1<<20), float64(ms.Sys)/(1<<20), ms.NumGC, float64(ms.TotalAlloc)/(1<<20))
	if err := writeHeap(filepath.Join(out, "heap.pprof")); err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	return dm.Close()
}

func writeHeap(path string) error {
	h, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(h, 0); err != nil {
		h.Close()
		return err
	}
	return h.Close()
}
