package identity

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/perfhound/perfhound/agent/collect"
)

// livePIDs returns n live PIDs: this host's processes first, then sleeps
// started (and killed at the end) to make up the number.
func livePIDs(b *testing.B, n int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Skip(err)
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && len(pids) < n {
			pids = append(pids, pid)
		}
	}
	for len(pids) < n {
		cmd := exec.Command("sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

// BenchmarkResolve100 resolves 100 live processes per op: cold (a new
// Resolver, every build ID read) and warm (every answer cached; each
// still stats /proc/PID, for its inode, and /proc/PID/exe).
//
//	go test ./agent/identity -run '^$' -bench Resolve100 -count 6
func BenchmarkResolve100(b *testing.B) {
	pids := livePIDs(b, 100)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			r, _ := New(Options{})
			for _, pid := range pids {
				r.Resolve(pid)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		r, _ := New(Options{})
		for _, pid := range pids {
			r.Resolve(pid)
		}
		for b.Loop() {
			for _, pid := range pids {
				r.Resolve(pid)
			}
		}
	})
}

// BenchmarkCacheEntryBytes fills the per-PID cache with 2,000 processes
// (fake /proc entries, each its own unit) and reports the heap each entry
// holds: the figure behind the package doc's bound.
//
//	go test ./agent/identity -run '^$' -bench CacheEntryBytes -benchtime 1x
func BenchmarkCacheEntryBytes(b *testing.B) {
	const n = 2000
	root := b.TempDir()
	exe, _ := os.Executable()
	for pid := 1; pid <= n; pid++ {
		fakeProc(b, root, pid, "svc", uint64(pid), exe, "0::/system.slice/service-"+strconv.Itoa(pid)+".service\n")
	}
	var perEntry float64
	for b.Loop() {
		r, _ := New(Options{Env: collect.Env{ProcFS: filepath.Clean(root)}})
		r.Resolve(1) // the build ID cache and kernel notes, once
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for pid := 2; pid <= n; pid++ {
			r.Resolve(pid)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / (n - 1)
		runtime.KeepAlive(r)
	}
	b.ReportMetric(perEntry, "B/entry")
}
