package collect

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

const spinEnv = "PERFHOUND_COLLECT_TEST_SPIN"

// TestMain turns the test binary into a busy child when spinEnv is set:
// one goroutine spinning for a bounded time, the target of TestLive.
func TestMain(m *testing.M) {
	if os.Getenv(spinEnv) != "" {
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; time.Now().Before(deadline); n++ {
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), spinEnv+"=1", "GOMAXPROCS=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	samplers, missing := Samplers(Env{}, Target{PID: cmd.Process.Pid})
	for _, m := range missing {
		t.Logf("missing: %s: %s", m.Signal, m.Reason)
	}
	series, missing := Run(context.Background(), samplers, 250*time.Millisecond, 1500*time.Millisecond)
	for _, m := range missing {
		t.Errorf("missing while sampling: %s: %s", m.Signal, m.Reason)
	}

	user, ok := findSeries(series, "process.cpu", l("mode", "user"))
	if !ok || len(user.Points) < 4 {
		t.Fatalf("process.cpu{mode=user}: %+v", user)
	}
	// A spinning thread is on a CPU or waiting for one: user time plus
	// run-queue delay is about one second per second, and user time alone
	// is about one core unless other work on this machine competes.
	mean := func(name string, labels map[string]string) float64 {
		s, ok := findSeries(series, name, labels)
		if !ok || len(s.Points) == 0 {
			t.Fatalf("no %s%v", name, labels)
		}
		sum := 0.0
		for _, p := range s.Points {
			sum += p.Value
		}
		return sum / float64(len(s.Points))
	}
	u, sys, delay := mean("process.cpu", l("mode", "user")), mean("process.cpu", l("mode", "system")), mean("process.schedstat.run_delay", nil)
	t.Logf("spinning child over %d points: user %.3f cores, system %.3f, run delay %.3f s/s", len(user.Points), u, sys, delay)
	if u < 0.75 && delay < 0.1 || u < 0.3 || u > 1.2 {
		t.Errorf("spinning child uses %.3f cores in user mode (run delay %.3f), want about 1", u, delay)
	}
	if total := u + sys + delay; total < 0.75 || total > 1.25 {
		t.Errorf("user + system + run delay = %.3f s/s, want about 1", total)
	}
	for _, mode := range []string{"user", "system", "idle"} {
		if s, ok := findSeries(series, "host.cpu", l("cpu", "all", "mode", mode)); !ok || len(s.Points) < 4 {
			t.Errorf("host.cpu{cpu=all,mode=%s}: %d points", mode, len(s.Points))
		}
	}
	for _, name := range []string{"process.schedstat.on_cpu", "process.ctxsw", "process.memory.rss", "process.fds", "host.load.load1", "host.memory.available"} {
		found := false
		for _, s := range series {
			found = found || s.Name == name
		}
		if !found {
			t.Errorf("no %s series", name)
		}
	}

	// The child exits: each process sampler says so once, then nothing.
	cmd.Process.Kill()
	cmd.Wait()
	exited = true
	rec := NewRecorder()
	for _, s := range samplers {
		err := s.Sample(context.Background(), rec)
		isProcess := len(s.Name()) > 8 && s.Name()[:8] == "process."
		if isProcess && !errors.Is(err, ErrProcessGone) {
			t.Errorf("%s after exit: %v, want ErrProcessGone", s.Name(), err)
		}
		if !isProcess && err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
		if err := s.Sample(context.Background(), rec); err != nil {
			t.Errorf("%s, second sample after exit: %v", s.Name(), err)
		}
	}
}
