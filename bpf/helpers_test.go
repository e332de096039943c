//go:build linux && amd64

package bpf

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// requireCollectors skips the test, saying why, unless this host lets the
// given collectors run (root or CAP_BPF+CAP_PERFMON, BTF, the tracepoints).
func requireCollectors(t *testing.T, cs ...Collector) {
	t.Helper()
	s := Probe()
	var missing []string
	for _, c := range cs {
		if err := s.Collectors[c]; err != nil {
			missing = append(missing, string(c)+": "+err.Error())
		}
	}
	if len(missing) > 0 {
		t.Skipf("eBPF collection unavailable here: %s", strings.Join(missing, "; "))
	}
}

// Subject binaries, built once per test binary.
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	binaries  = map[string]string{} // name → path
)

// subject returns the path of a test subject: "go" (the workload built
// normally), "go-stripped" (-ldflags=-s -w) or "c" (cwork, frame pointers).
func subject(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "perfhound-bpf-subjects-")
		if buildErr != nil {
			return
		}
		run := func(args ...string) error {
			cmd := exec.Command(args[0], args[1:]...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return &buildError{args, out.String(), err}
			}
			return nil
		}
		goBin := filepath.Join(buildDir, "workload")
		if buildErr = run("go", "build", "-buildvcs=false", "-o", goBin, "../fixtures/workloads"); buildErr != nil {
			return
		}
		binaries["go"] = goBin
		stripped := filepath.Join(buildDir, "workload-stripped")
		if buildErr = run("go", "build", "-buildvcs=false", "-ldflags=-s -w", "-o", stripped, "../fixtures/workloads"); buildErr != nil {
			return
		}
		binaries["go-stripped"] = stripped
		cBin := filepath.Join(buildDir, "cwork")
		if _, err := exec.LookPath("gcc"); err == nil {
			if buildErr = run("gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-Wall", "-o", cBin, "../fixtures/workloads/c/cwork.c"); buildErr != nil {
				return
			}
			binaries["c"] = cBin
		}
	})
	if buildErr != nil {
		t.Fatalf("building test subjects: %v", buildErr)
	}
	path, ok := binaries[name]
	if !ok {
		t.Skipf("test subject %q unavailable (gcc missing?)", name)
	}
	return path
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gated is a subject process that waits on its stdin before it execs the
// real program, so that a session can watch its pid from the first
// instruction: exec keeps the pid.
type gated struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
	done  chan error
}

func startGated(t *testing.T, argv ...string) *gated {
	t.Helper()
	g := &gated{done: make(chan error, 1)}
	g.cmd = exec.Command("/bin/sh", append([]string{"-c", `read _ && exec "$0" "$@"`}, argv...)...)
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.out
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		<-g.done
	})
	return g
}

func (g *gated) pid() int { return g.cmd.Process.Pid }

func (g *gated) release(t *testing.T) {
	t.Helper()
	if _, err := g.stdin.Write([]byte("go\n")); err != nil {
		t.Fatalf("releasing subject: %v", err)
	}
	g.stdin.Close()
}

// wait waits for the subject to finish, failing the test after limit.
func (g *gated) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("subject %v: %v\n%s", g.cmd.Args, err, g.out.String())
		}
	case <-time.After(limit):
		t.Fatalf("subject %v still running after %v", g.cmd.Args, limit)
	}
}

func startSession(t *testing.T, opts Options) *Session {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func read(t *testing.T, s *Session) *Window {
	t.Helper()
	w, err := s.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return w
}

// checkProfile validates p and has `go tool pprof -top` open it.
func checkProfile(t *testing.T, p *profile.Profile) {
	t.Helper()
	if err := p.CheckValid(); err != nil {
		t.Fatalf("invalid profile: %v", err)
	}
	path := filepath.Join(t.TempDir(), "p.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
}

// leafUserFunction is the innermost user-space function of a sample.
func leafUserFunction(s *profile.Sample) string {
	for _, loc := range s.Location {
		if loc.Mapping != nil && strings.HasPrefix(loc.Mapping.File, "[kernel") {
			continue
		}
		if len(loc.Line) > 0 && loc.Line[0].Function != nil {
			return loc.Line[0].Function.Name
		}
		return ""
	}
	return ""
}

// stackHas reports whether any frame of s is in a function matching one of
// the names (substring match).
func stackHas(s *profile.Sample, names ...string) bool {
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			if ln.Function == nil {
				continue
			}
			for _, n := range names {
				if strings.Contains(ln.Function.Name, n) {
					return true
				}
			}
		}
	}
	return false
}

// pidSamples returns the samples labelled with pid.
func pidSamples(p *profile.Profile, pid int) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range p.Sample {
		if len(s.NumLabel["pid"]) == 1 && s.NumLabel["pid"][0] == int64(pid) {
			out = append(out, s)
		}
	}
	return out
}
