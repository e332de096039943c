package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// maxDefaultBudget caps the default memory budget: far above what real
// inputs take (a 60 s CPU profile of a compile, 950 KB gzipped, parses
// into 30 MB), far below what a hostile 444 KB took before (3.9 GB).
const maxDefaultBudget = 2 << 30

// memoryFlag is --max-memory-mb: the memory one run of compare, analyze
// or serve may spend on the inputs it parses (profdecode.Budget).
type memoryFlag struct{ mb int64 }

func (m *memoryFlag) add(cmd *cobra.Command) {
	m.mb = defaultBudget() >> 20
	cmd.Flags().Int64Var(&m.mb, "max-memory-mb", m.mb, "memory the run may spend on parsed profiles and benchmark results, in MiB (default: a quarter of this machine's memory limit, at most 2048)")
}

// budget is the run's budget, or a usage error. It also sets the Go
// runtime's soft memory limit a little above the budget (unless GOMEMLIMIT
// is set), because the budget counts what is live: buffers refunded are
// garbage the collector would otherwise let pile up to as much again.
// Call restore when the command ends (tests run commands in one process).
func (m *memoryFlag) budget() (b *profdecode.Budget, restore func(), err error) {
	if m.mb <= 0 {
		return nil, nil, usageError{fmt.Errorf("--max-memory-mb must be positive, got %d", m.mb)}
	}
	restore = func() {}
	if os.Getenv("GOMEMLIMIT") == "" {
		prev := debug.SetMemoryLimit(softLimit(m.mb << 20))
		restore = func() { debug.SetMemoryLimit(prev) }
	}
	return profdecode.NewBudget(m.mb << 20), restore, nil
}

// softLimit is the Go runtime's memory limit for a budget: the budget,
// a quarter more for what is not charged (reports, the analysis's own
// tables), and 128 MiB for the runtime and the binary.
func softLimit(budget int64) int64 { return budget + budget/4 + 128<<20 }

// explain adds to an error over the budget how to raise it.
func (m *memoryFlag) explain(err error) error {
	if !errors.Is(err, profdecode.ErrOverBudget) {
		return err
	}
	return fmt.Errorf("%w (the run's budget is --max-memory-mb %d: raise it if this machine has the memory)", err, m.mb)
}

// defaultBudget is a quarter of the memory this process may use, at most
// maxDefaultBudget: the Go collector lets the heap grow to about twice
// what is live, and the analysis needs memory beside the parsed inputs.
func defaultBudget() int64 {
	return min(memoryLimit()/4, maxDefaultBudget)
}

// memoryLimit is the least of the machine's RAM, the memory limit of this
// process's cgroup (v2 or v1, and of its ancestors) and its address-space
// rlimit.
func memoryLimit() int64 {
	limit := int64(8 << 30) // if nothing can be read
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil && si.Totalram > 0 {
		limit = int64(si.Totalram) * int64(si.Unit)
	}
	if l, ok := cgroupLimit(); ok {
		limit = min(limit, l)
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &rl) == nil && rl.Cur != unix.RLIM_INFINITY && rl.Cur < 1<<62 {
		limit = min(limit, int64(rl.Cur))
	}
	return limit
}

// cgroupLimit is the least memory limit of this process's cgroups: v2's
// memory.max, v1's memory.limit_in_bytes, of the cgroup and every
// ancestor that is visible (in a container, the cgroup's own path may not
// be, and its limit is then on the mount's root).
func cgroupLimit() (int64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var limit int64
	found := false
	try := func(file string) {
		v, err := os.ReadFile(file)
		if err != nil {
			return
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "no limit"
			return
		}
		if !found || n < limit {
			limit, found = n, true
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var root, file string
		switch {
		case f[0] == "0" && f[1] == "":
			root, file = "/sys/fs/cgroup", "memory.max"
		case strings.Contains(","+f[1]+",", ",memory,"):
			root, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + f[2]); ; p = path.Dir(p) {
			try(path.Join(root, p, file))
			if p == "/" {
				break
			}
		}
	}
	return limit, found
}
