package collect

import (
	"context"
	"fmt"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.memory: the target's memory from /proc/PID/status, and the page
// faults of it and its descendants from /proc/PID/stat (procWatch.treeStat).
//
//	process.memory.rss     resident set (VmRSS: anonymous, file and shmem pages), "bytes"
//	process.memory.vms     virtual size (VmSize), "bytes"
//	process.memory.swap    swapped out anonymous memory (VmSwap), "bytes"
//	process.memory.minor_faults, process.memory.major_faults   faults of all threads of the tree, "count/s"
//
// RSS growth is the slope of process.memory.rss. Both files are read here:
// gopsutil parses VmSwap into a field it does not export, and its
// Process.PageFaults reads the host's /proc/stat for the boot time on every
// call. A kernel thread has no Vm lines; they are then recorded as missing.

func init() { Register(observation.SignalProcessMemory, processFactory(newProcessMemory)) }

type processMemory struct {
	w    *procWatch
	high treeCounters
}

func newProcessMemory(w *procWatch) (Sampler, error) { return &processMemory{w: w}, nil }

func (*processMemory) Name() observation.Signal { return observation.SignalProcessMemory }

func (s *processMemory) Sample(_ context.Context, rec *Recorder) error {
	st, ok, err := s.w.treeStat(&s.high)
	if !ok {
		return err
	}
	rec.Counter(observation.ProcessMinorFaults, nil, float64(st.minflt))
	rec.Counter(observation.ProcessMajorFaults, nil, float64(st.majflt))
	if st.zombie {
		return nil // exited: its faults are final, its memory is gone
	}
	path := s.w.path("status")
	b, err := readFile(path)
	if err != nil {
		return s.w.failed(err)
	}
	vals, err := parseStatus(path, b, "VmRSS", "VmSize", "VmSwap")
	if err != nil {
		return err
	}
	for _, g := range []struct {
		key    string
		series observation.SeriesName
	}{
		{"VmRSS", observation.ProcessRSS},
		{"VmSize", observation.ProcessVMS},
		{"VmSwap", observation.ProcessSwap},
	} {
		v, ok := vals[g.key]
		if !ok {
			rec.Missing(observation.Signal(g.series), fmt.Sprintf("no %s in %s (a kernel thread has no address space)", g.key, path))
			continue
		}
		rec.Gauge(g.series, nil, float64(v))
	}
	return nil
}
