package collect

import (
	"bufio"
	"bytes"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"
)

// threadStateSubject, set in the environment, makes the test binary the
// subject of TestThreadStates: threads each blocked in one system call
// the test knows, on a thread of its own (a raw system call holds its
// thread in the kernel), until its stdin closes or a minute passes.
const threadStateSubject = "PERFHOUND_THREADSTATE_SUBJECT"

// linux/futex.h, which x/sys/unix leaves out.
const (
	futexWait        = 0
	futexWaitBitset  = 9
	futexPrivateFlag = 128
)

func init() {
	if os.Getenv(threadStateSubject) == "" {
		return
	}
	blocked := func(f func()) {
		go func() {
			runtime.LockOSThread()
			f()
		}()
	}
	// A lock word held with waiters (2), waited on as glibc's and Rust's
	// contended mutexes wait: FUTEX_WAIT_PRIVATE, expecting 2.
	var word uint32 = 2
	blocked(func() {
		unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), futexWait|futexPrivateFlag, 2, 0, 0, 0)
	})
	var cond atomic.Uint32
	cond.Store(7) // a condition's counter: FUTEX_WAIT_BITSET, as glibc's condition variables wait
	blocked(func() {
		unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&cond)), futexWaitBitset|futexPrivateFlag, 7, 0, 0, 0xffffffff)
	})
	blocked(func() { unix.Nanosleep(&unix.Timespec{Sec: 3600}, nil) })
	var pipe [2]int
	if err := unix.Pipe(pipe[:]); err != nil {
		os.Exit(2)
	}
	blocked(func() { unix.Read(pipe[0], make([]byte, 1)) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	go func() { // accepts and holds the connection, never writing
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(time.Minute)
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	blocked(func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			os.Exit(2)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			os.Exit(2)
		}
		unix.Recvfrom(fd, make([]byte, 1), 0)
	})
	// More threads, as a thread pool's idle workers: as many as the
	// variable says beyond 1, half waiting on a condition, half asleep.
	extra, _ := strconv.Atoi(os.Getenv(threadStateSubject))
	for i := range extra - 1 {
		if i%2 == 0 {
			blocked(func() {
				unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&cond)), futexWaitBitset|futexPrivateFlag, 7, 0, 0, 0xffffffff)
			})
		} else {
			blocked(func() { unix.Nanosleep(&unix.Timespec{Sec: 3600}, nil) })
		}
	}
	os.Stdout.WriteString("ready\n")
	go func() {
		time.Sleep(time.Minute)
		os.Exit(0)
	}()
	bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// startThreadStateSubject runs the subject, with threads-1 more threads
// idle, and waits for it to have set its threads going; it ends with the
// test.
func startThreadStateSubject(t testing.TB, threads int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), threadStateSubject+"="+strconv.Itoa(max(threads, 1)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("subject: %q, %v", line, err)
	}
	return cmd
}

// threadStateRow is what TestThreadStates looks for in a profile.
type threadStateRow struct {
	state, wchan, call, fd, futex string
	futexVal                      int64 // -1: none
}

func rowsOf(p *profile.Profile) map[threadStateRow]int64 {
	rows := map[threadStateRow]int64{}
	if p == nil {
		return rows
	}
	one := func(m map[string][]string, k string) string {
		if v := m[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	for _, s := range p.Sample {
		r := threadStateRow{state: one(s.Label, "state"), call: one(s.Label, "syscall"), fd: one(s.Label, "fd"),
			futex: one(s.Label, "futex"), futexVal: -1}
		if v := one(s.Label, "futex_val"); v != "" {
			r.futexVal, _ = strconv.ParseInt(v, 10, 64)
		}
		if len(s.Location) == 1 {
			r.wchan = s.Location[0].Line[0].Function.Name
		}
		rows[r] += s.Value[0]
	}
	return rows
}

// TestThreadStates samples a real process whose threads block in known
// system calls and finds each: the call, the descriptor's kind, the
// futex operation and lock word, and the kernel function it sleeps in.
// It waits for the rows to appear (bounded), not for a time.
func TestThreadStates(t *testing.T) {
	cmd := startThreadStateSubject(t, 1)
	ts, err := StartThreadStates(Env{}, cmd.Process.Pid, ThreadStateOptions{Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if ts.GoVersion() == "" {
		t.Error("the subject (a Go test binary) not recognised as a Go program")
	}
	want := []struct {
		name string
		ok   func(r threadStateRow) bool
	}{
		{"a lock word's futex wait", func(r threadStateRow) bool {
			return r.state == "S" && r.call == "futex" && r.futex == "wait" && r.futexVal == 2
		}},
		{"a condition's futex wait", func(r threadStateRow) bool {
			return r.state == "S" && r.call == "futex" && r.futex == "wait_bitset" && r.futexVal == -1
		}},
		{"nanosleep", func(r threadStateRow) bool {
			return r.state == "S" && (r.call == "nanosleep" || r.call == "clock_nanosleep") && r.wchan != ""
		}},
		{"a pipe's read", func(r threadStateRow) bool { return r.state == "S" && r.call == "read" && r.fd == "pipe" }},
		{"a socket's receive", func(r threadStateRow) bool {
			return r.state == "S" && r.call == "recvfrom" && r.fd == "socket" && r.wchan != ""
		}},
	}
	deadline := time.Now().Add(30 * time.Second)
	rows := map[threadStateRow]int64{}
	for {
		p, missing := ts.Finish()
		if len(missing) > 0 {
			t.Fatalf("missing: %v", missing)
		}
		if p != nil {
			if err := p.CheckValid(); err != nil {
				t.Fatalf("profile: %v", err)
			}
			// Every label survives pprof's encoding (a numeric label of
			// 0 would not).
			var buf bytes.Buffer
			if err := p.Write(&buf); err != nil {
				t.Fatal(err)
			}
			q, err := profile.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := rowsOf(q), rowsOf(p); !maps.Equal(got, want) {
				t.Fatalf("rows after encoding %v, before %v", got, want)
			}
		}
		for r, n := range rowsOf(p) {
			rows[r] += n
		}
		var lacking []string
		for _, w := range want {
			found := false
			for r := range rows {
				found = found || w.ok(r)
			}
			if !found {
				lacking = append(lacking, w.name)
			}
		}
		if len(lacking) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, no %v in %v", lacking, rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("rows: %v", rows)
}

// TestThreadStatesBounded reads at most MaxThreads threads a tick, and
// each reading stands for the threads not read: the thread time of a
// window is about its threads times its length however few are read.
func TestThreadStatesBounded(t *testing.T) {
	cmd := startThreadStateSubject(t, 1)
	ts, err := StartThreadStates(Env{}, cmd.Process.Pid, ThreadStateOptions{Rate: 50, MaxThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	ts.Finish()
	start := time.Now()
	time.Sleep(2 * time.Second)
	p, _ := ts.Finish()
	span := time.Since(start)
	if p == nil {
		t.Fatal("nothing sampled")
	}
	var reads, nanos int64
	for _, s := range p.Sample {
		reads += s.Value[0]
		nanos += s.Value[1]
	}
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	threads := len(entries)
	ticks := int64(span / (20 * time.Millisecond))
	if reads > 2*(ticks+1) {
		t.Errorf("%d readings in %d ticks of at most 2 threads", reads, ticks)
	}
	// The subject's threads are fixed once it is ready; a busy machine
	// delays ticks, which then stand for longer: a generous band.
	got := float64(nanos) / float64(span.Nanoseconds())
	if got < 0.5*float64(threads) || got > 1.5*float64(threads) {
		t.Errorf("thread time %.2f threads' worth, want about %d", got, threads)
	}
}

// BenchmarkThreadStatesTick is one tick of the sampler over a process of
// 200 idle threads (half on a condition, half asleep: each has wchan and
// syscall read), reading at most 32 of them (the default) or all; its
// cost a second at 20 Hz is 20 ticks' (the "core%@20Hz" metric).
func BenchmarkThreadStatesTick(b *testing.B) {
	cmd := startThreadStateSubject(b, 200)
	for _, max := range []int{DefaultThreadsPerTick, 1000} {
		name := "32-threads"
		if max > DefaultThreadsPerTick {
			name = "all-threads"
		}
		b.Run(name, func(b *testing.B) {
			ts, err := newThreadStates(Env{}, cmd.Process.Pid, ThreadStateOptions{MaxThreads: max})
			if err != nil {
				b.Fatal(err)
			}
			defer ts.files.Close()
			ts.tick() // the files opened, the threads listed
			for b.Loop() {
				ts.tick()
			}
			if len(ts.tasks) < 200 {
				b.Fatalf("%d threads listed, want 200 or more", len(ts.tasks))
			}
			perTick := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(100*perTick*DefaultThreadStateRate/1e9, "core%@20Hz")
		})
	}
}

// TestThreadStateKeysBounded: past maxThreadStateKeys rows, new ones lose
// their process and thread, then their wait, so that a tree of thousands
// of short processes (a build) keeps the window's rows bounded.
func TestThreadStateKeysBounded(t *testing.T) {
	ts := &ThreadStates{agg: map[threadStateKey]*threadStateCount{}}
	for pid := 1; pid <= 3*maxThreadStateKeys; pid++ {
		ts.add(threadStateKey{pid: pid, tid: pid, thread: "cc1", state: 'S', wchan: "do_wait", call: "wait4", futexVal: -1}, 1)
	}
	if n := len(ts.agg); n > maxThreadStateKeys+2 {
		t.Errorf("%d rows, want at most %d and the overflow's", n, maxThreadStateKeys)
	}
	var total int64
	for _, c := range ts.agg {
		total += c.n
	}
	if total != 3*maxThreadStateKeys {
		t.Errorf("%d readings kept, want all %d", total, 3*maxThreadStateKeys)
	}
}
