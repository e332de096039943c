package collect

import (
	"context"

	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.cpu: the CPU time of the target and its descendants from
// /proc/PID/stat, summed by the kernel over all their threads, living and
// exited, and over the children they waited for (procWatch.treeStat).
//
//	process.cpu{mode="user"|"system"}   "cores"
//	process.cpu.threads                 threads now, "count"
//
// /proc/PID/stat is read here rather than through gopsutil's
// Process.Times: that also reads the host's /proc/stat for the boot time
// and calls getpriority(2) on the PID of the real host on every call, and
// it does not give the process state, which tells a zombie from a live
// process. One read of the file gives times, threads and state.

func init() { Register(observation.SignalProcessCPU, processFactory(newProcessCPU)) }

type processCPU struct {
	w    *procWatch
	high treeCounters
}

func newProcessCPU(w *procWatch) (Sampler, error) { return &processCPU{w: w}, nil }

func (*processCPU) Name() observation.Signal { return observation.SignalProcessCPU }

func (s *processCPU) Sample(_ context.Context, rec *Recorder) error {
	st, ok, err := s.w.treeStat(&s.high)
	if !ok {
		return err
	}
	rec.Counter(observation.ProcessCPU, map[string]string{"mode": "user"}, float64(st.utime)/cpu.ClocksPerSec)
	rec.Counter(observation.ProcessCPU, map[string]string{"mode": "system"}, float64(st.stime)/cpu.ClocksPerSec)
	if !st.zombie {
		rec.Gauge(observation.ProcessThreads, nil, float64(st.threads))
	}
	return nil
}
