package collect

import (
	"context"
	"fmt"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.ctxsw: context switches of the threads of the target and its
// descendants, from /proc/PID/task/*/status.
//
//	process.ctxsw{kind="voluntary"}     the thread blocked or slept (I/O, locks, sleeps), "count/s"
//	process.ctxsw{kind="involuntary"}   the thread was preempted: its time slice ran out or a task with a better claim woke, "count/s"
//
// Read here because the counts in /proc/PID/status, which gopsutil's
// Process.NumCtxSwitches reads, are the main thread's only. The kernel
// keeps no per-process total, so the threads are summed with threadSum:
// switches an exiting thread made after the previous reading are lost.

func init() { Register(observation.SignalProcessCtxSwitches, processFactory(newProcessCtxsw)) }

type processCtxsw struct {
	w   *procWatch
	sum *threadSum
}

func newProcessCtxsw(w *procWatch) (Sampler, error) {
	return &processCtxsw{w: w, sum: newThreadSum(2)}, nil
}

func (*processCtxsw) Name() observation.Signal { return observation.SignalProcessCtxSwitches }

func (s *processCtxsw) Sample(_ context.Context, rec *Recorder) error {
	if _, ok, err := s.w.read(); !ok {
		return err
	}
	cur, err := s.w.readThreads("status", parseCtxsw)
	if err != nil {
		return err
	}
	tot := s.sum.add(cur)
	rec.Counter(observation.ProcessCtxSwitches, map[string]string{"kind": "voluntary"}, float64(tot[0]))
	rec.Counter(observation.ProcessCtxSwitches, map[string]string{"kind": "involuntary"}, float64(tot[1]))
	return nil
}

// parseCtxsw reads a thread's voluntary and involuntary switches from its
// status file.
func parseCtxsw(path string, b []byte) ([]uint64, error) {
	v, err := parseStatus(path, b, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
	if err != nil {
		return nil, err
	}
	vol, ok1 := v["voluntary_ctxt_switches"]
	invol, ok2 := v["nonvoluntary_ctxt_switches"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s: no voluntary_ctxt_switches and nonvoluntary_ctxt_switches", path)
	}
	return []uint64{vol, invol}, nil
}
