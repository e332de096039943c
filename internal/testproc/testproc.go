// Package testproc gives the live tests of the collectors and the watcher
// a real process to watch and the kernel's own count of what it did, so
// that they decide from what the kernel reports, not from wall-clock luck.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Spin starts a shell that counts to n (10^8 is minutes of one CPU:
// longer than any test needs, yet bounded) and is killed when the test
// ends, or with the test process (Pdeathsig, which follows the thread
// that started it: the calling goroutine stays locked to its thread until
// the test's cleanup). A machine that cannot start a shell skips the test.
func Spin(t testing.TB, n int) *exec.Cmd {
	t.Helper()
	runtime.LockOSThread()
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); done", n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		t.Skipf("cannot start a spinning shell: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		runtime.UnlockOSThread()
	})
	return cmd
}

// OnCPU is the CPU time the kernel counts for pid's live threads; a
// process gone counts 0.
func OnCPU(pid int) time.Duration {
	cpu, _, _ := Schedstat(pid)
	return cpu
}

// Schedstat sums the first two fields of /proc/PID/task/*/schedstat over
// pid's live threads: the time they ran on a CPU and the time they waited
// for one. A thread that ended between the listing and its read counts
// nothing; a process whose threads cannot be listed is an error.
func Schedstat(pid int) (onCPU, runDelay time.Duration, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tids, err := os.ReadDir(dir)
	for _, tid := range tids {
		b, rerr := os.ReadFile(filepath.Join(dir, tid.Name(), "schedstat"))
		if f := strings.Fields(string(b)); rerr == nil && len(f) == 3 {
			cpu, _ := strconv.ParseInt(f[0], 10, 64)
			wait, _ := strconv.ParseInt(f[1], 10, 64)
			onCPU += time.Duration(cpu)
			runDelay += time.Duration(wait)
		}
	}
	return onCPU, runDelay, err
}
