package collect

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// watcher.cpu: the watcher's own CPU time, perfhound's, all its threads,
// from getrusage(2).
//
//	watcher.cpu{mode="user"|"system"}   "cores"
//
// Host-wide counters (host.cpu) include the watcher's work: at a short
// interval or on a quiet host it can be most of what they count. This
// series, read in the same rounds as theirs, lets the analyzer leave it
// out. The sampler is not registered: it samples the process that runs
// it, whatever the target is; observe's Watcher adds it to every window.

type watcherCPU struct{}

// SelfCPU returns the sampler of perfhound's own CPU time (watcher.cpu).
func SelfCPU() Sampler { return watcherCPU{} }

func (watcherCPU) Name() observation.Signal { return observation.SignalWatcherCPU }

func (watcherCPU) Sample(_ context.Context, rec *Recorder) error {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("getrusage: %w", err)
	}
	rec.Counter(observation.WatcherCPU, map[string]string{"mode": "user"}, float64(ru.Utime.Nano())/1e9)
	rec.Counter(observation.WatcherCPU, map[string]string{"mode": "system"}, float64(ru.Stime.Nano())/1e9)
	return nil
}

// WatcherPID is this process's PID as env's procfs numbers it: a host's
// /proc mounted into a container numbers it otherwise than the
// container's own PID namespace does. It falls back to os.Getpid() when
// that procfs has no self link (a fixture tree).
func WatcherPID(env Env) int {
	env = env.withDefaults()
	if link, err := os.Readlink(env.proc("self")); err == nil {
		if pid, err := strconv.Atoi(link); err == nil && pid > 0 {
			return pid
		}
	}
	return os.Getpid()
}
