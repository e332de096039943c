// Package memcap runs a test in a child process whose address space is
// capped, for tests of code that once took unbounded memory: should it
// regress, the child dies of "out of memory" and the test fails, instead
// of the machine running out of memory under every job on it.
package memcap

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const envVar = "PERFHOUND_MEMCAP_TEST"

// Child runs the calling test again in a child process (the same test
// binary, -test.run of this test alone) whose address space may grow by at
// most extra bytes beyond what it has mapped when the test starts
// (RLIMIT_AS). It returns true in the child, which then runs the test's
// body, and false in the parent once the child has passed; a child that
// fails, or dies, fails the parent with its output.
func Child(t *testing.T, extra uint64) bool {
	t.Helper()
	if os.Getenv(envVar) == t.Name() {
		vm, err := vmSize()
		if err != nil {
			t.Fatal(err)
		}
		lim := &syscall.Rlimit{Cur: vm + extra, Max: vm + extra}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
			t.Fatalf("capping the address space: %v", err)
		}
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), envVar+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 4000 {
			out = out[:4000]
		}
		t.Fatalf("child with its address space capped at +%d MiB: %v\n%s", extra>>20, err, out)
	}
	return false
}

// vmSize is the process's mapped address space in bytes.
func vmSize() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmSize:"); ok {
			var n uint64
			if _, err := fmt.Sscan(kb, &n); err == nil && n > 0 {
				return n << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
