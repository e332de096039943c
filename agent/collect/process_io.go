package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.io: the I/O of the target and its descendants from
// /proc/PID/io, through gopsutil's Process.IOCounters for the target,
// summed by the kernel over all their threads and over the children they
// waited for (the kernel moves a reaped child's counters into its
// parent's, as it does CPU time: procWatch.treeStat).
//
//	process.io.storage_bytes{op="read"|"write"}   read_bytes, write_bytes: bytes fetched from or sent towards storage (a write counts when the page is dirtied), "bytes/s"
//	process.io.syscall_bytes{op}                  rchar, wchar: bytes passed to read/write-like syscalls, page cache hits and sockets included, "bytes/s"
//	process.io.syscalls{op}                       syscr, syscw: read and write syscalls, "ops/s"
//
// Reading another user's /proc/PID/io needs ptrace read access (root or
// CAP_SYS_PTRACE); without it process.io is recorded as missing with the
// reason. A kernel without task I/O accounting has no such file, and the
// sampler does not run.

func init() { Register(observation.SignalProcessIO, processFactory(newProcessIO)) }

type processIO struct {
	w    *procWatch
	p    *process.Process
	high [6]uint64 // the totals so far: a member that exits unreaped by the tree takes its counts with it
}

// ioKeys are /proc/PID/io's counters, in the order processIO records them.
var ioKeys = [6]string{"read_bytes", "write_bytes", "rchar", "wchar", "syscr", "syscw"}

func newProcessIO(w *procWatch) (Sampler, error) {
	if _, err := os.Stat(w.path("io")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s: kernel without task I/O accounting (CONFIG_TASK_IO_ACCOUNTING)", w.path("io"))
	}
	// The Process is made directly: process.NewProcess checks that the PID
	// exists by signalling it on the real host when ProcFS is not a mount.
	return &processIO{w: w, p: &process.Process{Pid: int32(w.pid)}}, nil
}

func (*processIO) Name() observation.Signal { return observation.SignalProcessIO }

func (s *processIO) Sample(ctx context.Context, rec *Recorder) error {
	if _, ok, err := s.w.read(); !ok {
		return err
	}
	path := s.w.path("io")
	c, err := s.p.IOCountersWithContext(s.w.env.gopsutil(ctx))
	if errors.Is(err, fs.ErrPermission) {
		rec.Missing(observation.SignalProcessIO, fmt.Sprintf("%s: permission denied: another user's I/O counters need root or CAP_SYS_PTRACE", path))
		return nil
	}
	if err != nil {
		return fileError(path, s.w.failed(err))
	}
	tot := [6]uint64{c.DiskReadBytes, c.DiskWriteBytes, c.ReadBytes, c.WriteBytes, c.ReadCount, c.WriteCount}
	for _, pid := range s.w.members() {
		path := s.w.env.proc(pid, "io")
		b, err := readFile(path)
		if err != nil {
			continue // exited meanwhile, or another user's
		}
		if v, err := parseStatus(path, b, ioKeys[:]...); err == nil {
			for i, k := range ioKeys {
				tot[i] += v[k]
			}
		}
	}
	for i := range tot {
		s.high[i] = max(s.high[i], tot[i])
	}
	for i, c := range []struct {
		name observation.SeriesName
		op   string
	}{
		{observation.ProcessStorageBytes, "read"},
		{observation.ProcessStorageBytes, "write"},
		{observation.ProcessSyscallBytes, "read"},
		{observation.ProcessSyscallBytes, "write"},
		{observation.ProcessSyscalls, "read"},
		{observation.ProcessSyscalls, "write"},
	} {
		rec.Counter(c.name, map[string]string{"op": c.op}, float64(s.high[i]))
	}
	return nil
}
