package collect

import (
	"context"
	"math"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkRound is one reading of every sampler diagnose runs each
// --interval, on this machine's real /proc, /sys and sockets: host for a
// host target, pid for a process target (this process, holding a TCP
// connection to itself so that process.tcp's socket dump runs as it does
// for a server). cpu-ns/op is the process's CPU time (user + system, from
// getrusage) per round: what one round costs a core, which is what the
// floors on --interval (agent/diagnose.MinInterval) are derived from.
// pid-no-sockets is a process target without sockets, whose
// process.tcp skips the dump.
func BenchmarkRound(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("no /proc")
	}
	b.Run("host", func(b *testing.B) { benchRound(b, Target{}) })
	b.Run("pid-no-sockets", func(b *testing.B) { benchRound(b, Target{PID: os.Getpid()}) })
	b.Run("pid", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchRound(b, Target{PID: os.Getpid()})
	})
}

// BenchmarkRun is one window of the recorder as diagnose runs it, at the floors of
// --interval (agent/diagnose: 250 ms for the host, 750 ms for a process),
// and at 100 ms and 500 ms, what lower floors would cost, for a 6 s
// window per op: what the readings cost in place, timer wake-ups, cold
// caches and the recorder's growing series included, which one round
// after another (BenchmarkRound) does not see. cpu-ns/reading is the CPU
// time per reading, core-% that time as a share of one core over the
// window.
func BenchmarkRun(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("no /proc")
	}
	const window = 6 * time.Second
	run := func(b *testing.B, t Target, interval time.Duration) {
		samplers, _ := Samplers(Env{}, t)
		samplers = append(samplers, SelfCPU())
		var cpu time.Duration
		for b.Loop() {
			before := cpuTime(b)
			run(context.Background(), samplers, interval, window)
			cpu += cpuTime(b) - before
		}
		// Readings at 0, every interval, and at the window's end.
		readings := math.Ceil(window.Seconds()/interval.Seconds()) + 1
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/readings, "cpu-ns/reading")
		b.ReportMetric(100*cpu.Seconds()/float64(b.N)/window.Seconds(), "core-%")
	}
	for _, iv := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond} {
		b.Run("host-"+iv.String(), func(b *testing.B) { run(b, Target{}, iv) })
	}
	for _, iv := range []time.Duration{500 * time.Millisecond, 750 * time.Millisecond} {
		b.Run("pid-"+iv.String(), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			run(b, Target{PID: os.Getpid()}, iv)
		})
	}
}

func benchRound(b *testing.B, t Target) {
	samplers, missing := Samplers(Env{}, t)
	for _, m := range missing {
		b.Logf("missing: %s: %s", m.Signal, m.Reason)
	}
	rec := NewRecorder()
	ctx := context.Background()
	b.ReportAllocs()
	before := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		rec.Sample(ctx, samplers, time.Now())
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(samplers)), "samplers")
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProcessScan is one window's end of the host's process scan
// (ProcessScan.Finish, the agent's once-a-window reading of every
// process) on this machine's real /proc. cpu-ns/op is the CPU time per
// scan; procs the processes on the host.
func BenchmarkProcessScan(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("no /proc")
	}
	s, err := StartProcessScan(Env{})
	if err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	for b.Loop() {
		before := cpuTime(b)
		if _, _, err := s.Finish(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(s.snaps)), "procs")
}
