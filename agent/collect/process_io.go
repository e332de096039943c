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

// process.io: the target's I/O from /proc/PID/io, through gopsutil's
// Process.IOCounters, summed by the kernel over all its threads.
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
	w *procWatch
	p *process.Process
}

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
	for _, c := range []struct {
		name observation.SeriesName
		op   string
		v    uint64
	}{
		{observation.ProcessStorageBytes, "read", c.DiskReadBytes},
		{observation.ProcessStorageBytes, "write", c.DiskWriteBytes},
		{observation.ProcessSyscallBytes, "read", c.ReadBytes},
		{observation.ProcessSyscallBytes, "write", c.WriteBytes},
		{observation.ProcessSyscalls, "read", c.ReadCount},
		{observation.ProcessSyscalls, "write", c.WriteCount},
	} {
		rec.Counter(c.name, map[string]string{"op": c.op}, float64(c.v))
	}
	return nil
}
