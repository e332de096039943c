package collect

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.load: load averages from /proc/loadavg and the run queue from
// /proc/stat, as gauges.
//
//	host.load.load1, host.load.load5, host.load.load15   "count"
//	host.load.procs_running   tasks runnable now (running or on a run queue), "count"
//	host.load.procs_blocked   tasks in uninterruptible sleep (D state, mostly block I/O), "count"
//
// Both files are read here rather than through gopsutil: load.Avg falls
// back to sysinfo(2) when the file cannot be read, which would report the
// real host's load for a fixture or container tree, and indexes the
// fields of /proc/loadavg without checking there are three; load.Misc
// lists every PID under /proc on each call for a total not needed here.

func init() { Register(observation.SignalHostLoad, newHostLoad) }

type hostLoad struct{ env Env }

func newHostLoad(env Env, _ Target) (Sampler, error) {
	return &hostLoad{env: env.withDefaults()}, nil
}

func (*hostLoad) Name() observation.Signal { return observation.SignalHostLoad }

func (s *hostLoad) Sample(_ context.Context, rec *Recorder) error {
	path := s.env.proc("loadavg")
	b, err := readFile(path)
	if err != nil {
		return err
	}
	avg, err := parseLoadavg(path, b)
	if err != nil {
		return err
	}
	statPath := s.env.proc("stat")
	b, err = readFile(statPath)
	if err != nil {
		return err
	}
	running, blocked, err := parseStatProcs(statPath, b)
	if err != nil {
		return err
	}
	rec.Gauge(observation.HostLoad1, nil, avg[0])
	rec.Gauge(observation.HostLoad5, nil, avg[1])
	rec.Gauge(observation.HostLoad15, nil, avg[2])
	rec.Gauge(observation.HostProcsRunning, nil, float64(running))
	rec.Gauge(observation.HostProcsBlocked, nil, float64(blocked))
	return nil
}

// parseLoadavg reads "0.43 0.87 1.25 5/88 18793".
func parseLoadavg(path string, b []byte) ([3]float64, error) {
	var avg [3]float64
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return avg, fmt.Errorf("%s: want 3 load averages, got %q", path, strings.TrimSpace(string(b)))
	}
	for i := range avg {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || !finiteNonNeg(v) {
			return avg, fmt.Errorf("%s: load average %d: bad value %q", path, i+1, f[i])
		}
		avg[i] = v
	}
	return avg, nil
}

// parseStatProcs reads the procs_running and procs_blocked lines of
// /proc/stat; both must be present.
func parseStatProcs(path string, b []byte) (running, blocked uint64, err error) {
	var haveRunning, haveBlocked bool
	err = lines(b, func(n int, line string) error {
		key, val, ok := strings.Cut(line, " ")
		if !ok || (key != "procs_running" && key != "procs_blocked") {
			return nil
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return lineError(path, n, "%s: %v", key, err)
		}
		if key == "procs_running" {
			running, haveRunning = v, true
		} else {
			blocked, haveBlocked = v, true
		}
		return nil
	})
	if err == nil && !(haveRunning && haveBlocked) {
		err = fmt.Errorf("%s: no procs_running and procs_blocked lines", path)
	}
	return running, blocked, err
}
