package identity

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// progSource is a Go program that prints "ready VERSION", then waits for
// a line: "exec" makes it execve its own path again (same PID, same start
// time, whatever file is at the path now), anything else or EOF ends it.
const progSource = `package main

import (
	"bufio"
	"fmt"
	"os"
	"syscall"
)

const version = %q

func main() {
	fmt.Println("ready", version)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err == nil && line == "exec\n" {
		exe, _ := os.Executable()
		fmt.Println(syscall.Exec(exe, os.Args, os.Environ()))
	}
}
`

// buildGo builds progSource with version into out (go build in its own
// module), skipping the test when there is no go command.
func buildGo(t testing.TB, out, version string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build a test program: %v", err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module prog\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), fmt.Appendf(nil, progSource, version), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// prog is a running test program.
type prog struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	ready string // its "ready" line
}

// startProg runs path with args and waits for its "ready" line; the
// process is killed when the test ends.
func startProg(t testing.TB, path string, args ...string) *prog {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	p := &prog{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
	t.Cleanup(p.stop)
	p.ready = p.waitReady(t)
	return p
}

func (p *prog) waitReady(t testing.TB) string {
	t.Helper()
	line, err := p.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("%s did not say ready: %q, %v", p.cmd.Path, line, err)
	}
	return strings.TrimSpace(line)
}

func (p *prog) pid() int { return p.cmd.Process.Pid }

// stop kills the program and reaps it (its PID is then free).
func (p *prog) stop() {
	p.in.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// goBuildID is what `go tool buildid FILE` prints.
func goBuildID(t testing.TB, file string) string {
	t.Helper()
	b, err := exec.Command("go", "tool", "buildid", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool buildid %s: %v\n%s", file, err, b)
	}
	return strings.TrimSpace(string(b))
}

// readelfBuildID is the "Build ID:" `readelf -n FILE` prints.
func readelfBuildID(t testing.TB, file string) string {
	t.Helper()
	b, err := exec.Command("readelf", "-n", file).CombinedOutput()
	if err != nil {
		t.Skipf("readelf -n %s: %v", file, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, id, ok := strings.Cut(line, "Build ID:"); ok {
			return strings.TrimSpace(id)
		}
	}
	t.Fatalf("readelf -n %s shows no Build ID:\n%s", file, b)
	return ""
}

func newResolver(t testing.TB, opts Options) *Resolver {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resolve(t testing.TB, r *Resolver, pid int) Identity {
	t.Helper()
	id, err := r.Resolve(pid)
	if err != nil {
		t.Fatalf("Resolve(%d): %v", pid, err)
	}
	return id
}

// ownCgroup is this process's cgroup as the package reads it.
func ownCgroup(t testing.TB) cgroupInfo {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	return parseCgroup(string(b))
}
