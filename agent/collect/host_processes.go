package collect

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// ProcessScan gives every process's share of a window, so that a host
// diagnosis can rank processes by their impact without following each one
// all window: it reads /proc/PID/stat and the threads' schedstat of every
// process once at the start and once at the end, and records the
// difference as one point per process and series:
//
//	proc.cpu{pid,comm,mode="user"|"system"}  "cores"
//	proc.run_delay{pid,comm}                 runnable, waiting for a CPU, summed over threads, "seconds/s"
//	proc.blkio_delay{pid,comm}               waiting for block I/O (delay accounting), "seconds/s"
//	proc.memory.rss{pid,comm}                resident memory at the window's end, "bytes"
//
// The resident memory is read from the same stat file, so it costs
// nothing more; it lets a service split out of the host's window
// (procrank) carry its memory, which the regression detector's leak rule
// reads.
// Only processes that did something are recorded: on a host of 500
// processes most sleep all window. proc.blkio_delay needs the kernel's
// delay accounting (sysctl kernel.task_delayacct=1, or the delayacct boot
// parameter); without it the field reads 0 and is not recorded. A process
// that exits during the window leaves no record (its time is in host.cpu
// only); one that starts during it counts from zero. A scan costs about
// a millisecond of CPU per hundred processes (BenchmarkProcessScan), where
// sampling every process every interval would cost as much every second.
type ProcessScan struct {
	env   Env
	start time.Time
	snaps map[int]procSnap
	scans int        // Finish calls: every fullScanEvery-th reads every schedstat
	files *heldFiles // kept open from one scan to the next; Close closes them
}

// fullScanEvery bounds how late a skipped process's run delay is counted
// (scanProcesses): every sixth scan, a minute of the agent's windows,
// reads every process's threads, whatever their CPU time did.
const fullScanEvery = 6

// procSnap is one process's counters at one scan.
type procSnap struct {
	comm         string
	starttime    uint64 // identifies the process behind a reused PID
	utime, stime uint64 // clock ticks
	blkio        uint64 // clock ticks (delayacct_blkio_ticks)
	runDelay     uint64 // nanoseconds, summed over the live threads
	rss          uint64 // bytes
	// at is when its counters were read: a scan of a busy host's
	// processes takes a while, and a process read early in the last scan
	// and late in the first had a shorter window than the scans' ends.
	at time.Time
}

// StartProcessScan takes the window's first scan.
func StartProcessScan(env Env) (*ProcessScan, error) {
	env = env.withDefaults()
	files := newHeldFiles()
	snaps, err := scanProcesses(env, nil, files)
	if err != nil {
		files.Close()
		return nil, err
	}
	return &ProcessScan{env: env, start: time.Now(), snaps: snaps, files: files}, nil
}

// Close closes the files the scan keeps open between windows.
func (s *ProcessScan) Close() { s.files.Close() }

// Finish takes the window's last scan and returns one point per process
// and series, at the end of the window, with the mean rate over it. That
// scan is the next window's first: Finish again ends the next window.
func (s *ProcessScan) Finish() ([]observation.Series, []observation.Missing, error) {
	s.scans++
	prev := s.snaps
	if s.scans%fullScanEvery == 0 {
		prev = nil
	}
	end, err := scanProcesses(s.env, prev, s.files)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	begin, secs := s.snaps, now.Sub(s.start).Seconds()
	s.snaps, s.start = end, now
	if secs <= 0 {
		return nil, nil, errors.New("process scan: the window took no time")
	}
	pids := make([]int, 0, len(end))
	for pid := range end {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	var out []observation.Series
	blkio := false
	at := now.UTC().Truncate(time.Millisecond)
	for _, pid := range pids {
		e := end[pid]
		b, seen := begin[pid]
		secs := secs
		if !seen || b.starttime != e.starttime {
			b = procSnap{} // born in the window: all its time is the window's
		} else if d := e.at.Sub(b.at).Seconds(); d > 0 {
			secs = d // between its own two readings
		}
		delta := func(a, b uint64) uint64 {
			if a < b {
				return 0
			}
			return a - b
		}
		user := float64(delta(e.utime, b.utime)) / cpu.ClocksPerSec / secs
		sys := float64(delta(e.stime, b.stime)) / cpu.ClocksPerSec / secs
		run := float64(delta(e.runDelay, b.runDelay)) / 1e9 / secs
		blk := float64(delta(e.blkio, b.blkio)) / cpu.ClocksPerSec / secs
		if user+sys+run+blk == 0 {
			continue
		}
		point := func(name observation.SeriesName, extra map[string]string, v float64) {
			l := map[string]string{"pid": strconv.Itoa(pid), "comm": e.comm}
			for k, x := range extra {
				l[k] = x
			}
			out = append(out, observation.Series{Name: name, Unit: name.Unit(), Labels: l,
				Points: []observation.Point{{Time: at, Value: v}}})
		}
		point(observation.HostScanCPU, map[string]string{"mode": "user"}, user)
		point(observation.HostScanCPU, map[string]string{"mode": "system"}, sys)
		point(observation.HostScanRunDelay, nil, run)
		if e.rss > 0 {
			point(observation.HostScanRSS, nil, float64(e.rss))
		}
		if blk > 0 {
			blkio = true
			point(observation.HostScanBlkioDelay, nil, blk)
		}
	}
	var missing []observation.Missing
	if b, err := readFile(s.env.proc("sys", "kernel", "task_delayacct")); !blkio && (err != nil || strings.TrimSpace(string(b)) != "1") {
		missing = append(missing, observation.Missing{Signal: observation.Signal(observation.HostScanBlkioDelay),
			Reason: "the kernel's delay accounting is off (sysctl kernel.task_delayacct=0): /proc cannot say which process waited for block I/O"})
	}
	return out, missing, nil
}

// scanProcesses reads every process's counters. Processes that exit while
// it reads are skipped; an unreadable /proc is an error.
//
// The threads' schedstat is read only of a process that ran since prev
// (its CPU time moved) or whose main thread is runnable now (a starved
// process waits without running); the others keep prev's run delay. A
// thread's run delay grows only while it is runnable, and a runnable
// thread that gets the CPU adds CPU time, so what is skipped is the wait
// of a process that ran less than a clock tick all window (a worker
// thread starved while the main one sleeps): it is counted, late, when
// its CPU time next moves or at the next full scan (prev nil, every
// fullScanEvery), and lost only if it exits first. Most of a host's
// processes sleep all window, and this halves the files a scan opens.
func scanProcesses(env Env, prev map[int]procSnap, files *heldFiles) (map[int]procSnap, error) {
	entries, err := os.ReadDir(env.ProcFS)
	if err != nil {
		return nil, fmt.Errorf("process scan: %w", err)
	}
	out := make(map[int]procSnap, len(entries))
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := files.read(env, pid, "stat")
		if err != nil {
			continue // exited, or not ours to read
		}
		st, err := parseProcStat("stat", b) // its error is dropped: the process is skipped
		if err != nil || st.state == 'Z' || st.state == 'X' {
			continue
		}
		s := procSnap{comm: statComm(b), starttime: st.starttime, utime: st.utime, stime: st.stime, blkio: st.blkio,
			rss: st.rss * uint64(os.Getpagesize()), at: time.Now()}
		if p, ok := prev[pid]; ok && p.starttime == s.starttime && p.utime == s.utime && p.stime == s.stime && st.state != 'R' {
			s.runDelay = p.runDelay
		} else {
			s.runDelay = threadsRunDelay(env, pid, st.threads, files)
		}
		out[pid] = s
	}
	files.keep(func(pid int) bool { _, ok := out[pid]; return ok })
	return out, nil
}

// statComm is the command name in /proc/PID/stat: between the first '('
// and the last ')', since it may hold either.
func statComm(b []byte) string {
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j <= i {
		return ""
	}
	return s[i+1 : j]
}

// threadsRunDelay sums the run-queue wait (the second field of
// /proc/PID/task/TID/schedstat) of a process's live threads: the
// process's own schedstat is its main thread's only, which is all of it
// for a single-threaded process (most of a host's), read without
// listing the threads.
func threadsRunDelay(env Env, pid int, threads uint64, files *heldFiles) uint64 {
	if threads == 1 {
		b, err := files.read(env, pid, "schedstat")
		if err != nil {
			return 0
		}
		d, _ := runDelay("", b)
		return d[0]
	}
	delays, _ := readThreads(env, strconv.Itoa(pid), "schedstat", runDelay)
	var sum uint64
	for _, d := range delays {
		sum += d[0]
	}
	return sum
}

// runDelay reads the run-queue wait, in nanoseconds, of a schedstat file
// ("on-CPU ns, run-queue wait ns, timeslices"); 0 when it has none.
func runDelay(_ string, b []byte) ([]uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return []uint64{0}, nil
	}
	v, _ := strconv.ParseUint(f[1], 10, 64)
	return []uint64{v}, nil
}
