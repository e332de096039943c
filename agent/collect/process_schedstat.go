package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.schedstat: scheduler statistics of the threads of the target
// and its descendants, from /proc/PID/task/*/schedstat ("on-CPU ns,
// run-queue wait ns, timeslices").
//
//	process.schedstat.on_cpu       time on a CPU, "cores"
//	process.schedstat.run_delay    time runnable but waiting on a run queue, summed over threads, "seconds/s"
//	process.schedstat.timeslices   times a thread was put on a CPU, "count/s"
//
// run_delay is the direct measure of CPU saturation for this process: a
// value of 0.5 means that, on average, half a thread was ready to run and
// not running. run_delay / timeslices is the mean wait per scheduling.
//
// gopsutil has no reader for schedstat, so it is read here. The
// per-process file holds the main thread only; the threads are summed
// with threadSum, so what an exiting thread (or process) did after the
// previous reading is lost. A kernel without CONFIG_SCHED_INFO has no such file (the
// sampler does not run); one that keeps no statistics reports "0 0 0" for
// every thread, which is recorded as missing.

func init() { Register(observation.SignalProcessSchedstat, processFactory(newProcessSchedstat)) }

type processSchedstat struct {
	w   *procWatch
	sum *threadSum
}

func newProcessSchedstat(w *procWatch) (Sampler, error) {
	if _, err := os.Stat(w.path("schedstat")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s: kernel without scheduler statistics (CONFIG_SCHED_INFO)", w.path("schedstat"))
	}
	return &processSchedstat{w: w, sum: newThreadSum(3)}, nil
}

func (*processSchedstat) Name() observation.Signal { return observation.SignalProcessSchedstat }

func (s *processSchedstat) Sample(_ context.Context, rec *Recorder) error {
	if _, ok, err := s.w.read(); !ok {
		return err
	}
	cur, err := s.w.readThreads("schedstat", func(path string, b []byte) ([]uint64, error) {
		v, err := parseSchedstat(path, b)
		return v[:], err
	})
	if err != nil {
		return err
	}
	var slices uint64
	for _, v := range cur {
		slices += v[2]
	}
	if slices == 0 {
		rec.Missing(observation.SignalProcessSchedstat, fmt.Sprintf("%s: every thread reports 0 timeslices: the kernel keeps no scheduler statistics", s.w.path("task", "*", "schedstat")))
		return nil
	}
	tot := s.sum.add(cur)
	rec.Counter(observation.ProcessOnCPU, nil, float64(tot[0])/1e9)
	rec.Counter(observation.ProcessRunDelay, nil, float64(tot[1])/1e9)
	rec.Counter(observation.ProcessTimeslices, nil, float64(tot[2]))
	return nil
}

// parseSchedstat reads "on-CPU-ns run-delay-ns timeslices".
func parseSchedstat(path string, b []byte) ([3]uint64, error) {
	var v [3]uint64
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return v, fmt.Errorf("%s: want 3 fields, got %d", path, len(f))
	}
	for i := range v {
		x, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return v, fmt.Errorf("%s: field %d: %v", path, i+1, err)
		}
		v[i] = x
	}
	return v, nil
}
