package goscrape

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/testproc"
)

// tmpDir holds what the tests build; TestMain removes it.
var tmpDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "goscrape-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var fixture struct {
	once sync.Once
	path string
	err  error
}

// buildFixture builds fixtures/goservice once per test run.
func buildFixture(t *testing.T) string {
	t.Helper()
	fixture.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			fixture.err = fmt.Errorf("finding the go command: %w", err)
			return
		}
		if dir := os.Getenv("PERFHOUND_TEST_SUBJECTS"); dir != "" {
			// Built already, at normal priority (scripts/test-busy.sh).
			fixture.path = filepath.Join(dir, "goservice")
			_, fixture.err = os.Stat(fixture.path)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		fixture.path = filepath.Join(tmpDir, "goservice")
		out, err := exec.CommandContext(ctx, goBin, "build", "-buildvcs=false", "-o", fixture.path,
			"github.com/perfhound/perfhound/fixtures/goservice").CombinedOutput()
		if err != nil {
			fixture.err = fmt.Errorf("building fixtures/goservice: %v\n%s", err, out)
		}
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.path
}

// startFixture runs the goservice fixture and returns its base URL and
// PID; it is killed when the test ends (or the test binary dies) and exits
// by itself after 10 minutes anyway.
func startFixture(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(buildFixture(t), append([]string{"-duration", "10m"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Scan()
		line <- s.Text()
	}()
	select {
	case l := <-line:
		u, ok := strings.CutPrefix(l, "listening on ")
		if !ok {
			t.Fatalf("goservice's first line is %q, want listening on URL", l)
		}
		return u, cmd.Process.Pid
	case <-time.After(2 * time.Minute):
		t.Fatal("goservice did not say where it listens within two minutes")
		return "", 0
	}
}

// scrapeTimeout bounds each request of a scrape of the fixture: generous,
// for a service that a busy machine gives little of a CPU.
const scrapeTimeout = time.Minute

// windowFor is a scrape window in which the service at pid gets about
// 300 ms of CPU time (30 samples at 100 Hz; it burns a CPU when it can),
// by the kernel's count over a second: 3 s at least, a minute at most.
func windowFor(t *testing.T, pid int) time.Duration {
	t.Helper()
	onCPU := func() time.Duration { return testproc.OnCPU(pid) }
	start, cpu0 := time.Now(), onCPU()
	time.Sleep(time.Second) // a second of the service's life, measured
	rate := (onCPU() - cpu0).Seconds() / time.Since(start).Seconds()
	window := 3 * time.Second
	if rate > 0 {
		window = max(window, time.Duration(math.Ceil(0.3/rate))*time.Second)
	}
	window = min(window, time.Minute)
	t.Logf("the service gets %.2f of a CPU: a %v window", rate, window)
	return window
}

func TestScrapeGoService(t *testing.T) {
	t.Parallel()
	t.Run("profiling on", func(t *testing.T) {
		t.Parallel()
		base, pid := startFixture(t, "-block-rate", "1", "-mutex-fraction", "1")
		window := windowFor(t, pid)
		res, err := Scrape(context.Background(), Options{BaseURL: base, Timeout: scrapeTimeout}, window)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Missing {
			t.Errorf("missing %s: %s", m.Signal, m.Reason)
		}
		// The profiles are fetched side by side: the window, and some
		// time for the fetches, not a window for each.
		if d := res.Duration; d < window || d > 2*window+5*time.Second {
			t.Errorf("window lasted %v, want about %v", d, window)
		}
		got := map[observation.ProfileKind]observation.Profile{}
		for _, p := range res.Profiles {
			got[p.Kind] = p
			if err := p.Profile.CheckValid(); err != nil {
				t.Errorf("%s profile: %v", p.Kind, err)
			}
			if p.Source != "pprof" || p.Labels["url"] != base {
				t.Errorf("%s profile: source %q labels %v, want pprof and url %s", p.Kind, p.Source, p.Labels, base)
			}
		}
		wantModes := map[observation.ProfileKind]string{
			observation.KindCPU: ModeDelta, observation.KindAllocs: ModeDelta, observation.KindBlock: ModeDelta,
			observation.KindMutex: ModeDelta, observation.KindHeap: ModeSnapshot, observation.KindGoroutine: ModeSnapshot,
		}
		for kind, mode := range wantModes {
			p, ok := got[kind]
			if !ok {
				t.Errorf("no %s profile", kind)
				continue
			}
			if p.Labels["mode"] != mode {
				t.Errorf("%s profile: mode %q, want %q", kind, p.Labels["mode"], mode)
			}
			if d := time.Duration(p.Profile.DurationNanos); mode == ModeDelta && (d < window*9/10 || d > 2*window) {
				t.Errorf("%s profile: duration %v, want about the %v window", kind, d, window)
			}
		}
		if t.Failed() {
			return
		}

		if top := topMain(t, got[observation.KindCPU].Profile, "cpu"); top != "main.burnCPU" {
			t.Errorf("CPU profile: %s has the largest cumulative share among main.*, want main.burnCPU", top)
		}
		if top := topMain(t, got[observation.KindAllocs].Profile, "alloc_space"); top != "main.churnAllocs" {
			t.Errorf("allocs profile: %s has the largest cumulative share among main.*, want main.churnAllocs", top)
		}
		if c := cumOf(t, got[observation.KindMutex].Profile, "delay", "main.contend"); c <= 0 {
			t.Error("mutex profile: no contention under main.contend")
		}
		if c := cumOf(t, got[observation.KindBlock].Profile, "delay", "main.contend"); c <= 0 {
			t.Error("block profile: no blocking under main.contend")
		}
		if c := cumOf(t, got[observation.KindBlock].Profile, "delay", "main.waitOnChannel"); c <= 0 {
			t.Error("block profile: no blocking under main.waitOnChannel")
		}
		if c := cumOf(t, got[observation.KindGoroutine].Profile, "goroutine", "main.contend"); c != 4 {
			t.Errorf("goroutine profile: %d goroutines under main.contend, want 4", c)
		}

		series := map[observation.SeriesName]observation.Series{}
		for _, s := range res.Series {
			series[s.Name] = s
			if s.Labels["url"] != base {
				t.Errorf("series %s: labels %v, want url %s", s.Name, s.Labels, base)
			}
			if want := s.Name.Unit(); s.Unit != want {
				t.Errorf("series %s: unit %q, the catalogue says %q", s.Name, s.Unit, want)
			}
		}
		for name, points := range map[observation.SeriesName]int{
			"go.heap.alloc": 2, "go.heap.sys": 2, "go.heap.inuse": 2, "go.heap.objects": 2, "go.heap.goal": 2,
			"go.gc.cpu_fraction": 2, "go.goroutines": 2, "go.gc.count": 1, "go.alloc.rate": 1,
		} {
			if n := len(series[name].Points); n != points {
				t.Errorf("series %s: %d points, want %d", name, n, points)
			}
		}
		// Hundreds of MB/s on an idle machine; a busy one wakes
		// churnAllocs (256 KiB a wakeup) less often, but every second.
		if r := series["go.alloc.rate"].Points; len(r) == 1 && r[0].Value < 256<<10 {
			t.Errorf("go.alloc.rate is %.0f bytes/s, want churnAllocs' 256 KiB a wakeup, many a second", r[0].Value)
		}
		if g := series["go.goroutines"].Points; len(g) > 0 && g[0].Value < 8 {
			t.Errorf("go.goroutines is %v, want at least the workload's 8", g[0].Value)
		}
		pauses := series["go.gc.pause"].Points
		if len(pauses) == 0 {
			t.Error("no go.gc.pause points, though churnAllocs makes GCs all the time")
		}
		for _, p := range pauses {
			if p.Value <= 0 || p.Value > 1 || p.Time.Before(res.Start.Add(-time.Second)) {
				t.Errorf("go.gc.pause point %v: not a GC pause in the window", p)
			}
		}
	})

	t.Run("profiling off", func(t *testing.T) {
		t.Parallel()
		base, _ := startFixture(t)
		res, err := Scrape(context.Background(), Options{BaseURL: base + "/debug/pprof/", Timeout: scrapeTimeout,
			Profiles: []string{"allocs", "block", "mutex"}}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Profiles) != 1 || res.Profiles[0].Kind != observation.KindAllocs {
			t.Errorf("got %d profiles, want allocs only", len(res.Profiles))
		}
		want := map[observation.Signal]string{"pprof.block": "runtime.SetBlockProfileRate", "pprof.mutex": "runtime.SetMutexProfileFraction"}
		for _, m := range res.Missing {
			t.Logf("%s: %s", m.Signal, m.Reason)
			fix, ok := want[m.Signal]
			if !ok {
				t.Errorf("missing %s: %s", m.Signal, m.Reason)
				continue
			}
			delete(want, m.Signal)
			if !strings.Contains(m.Reason, "endpoint serves an empty profile") || !strings.Contains(m.Reason, fix) {
				t.Errorf("missing %s: %q, want it to say the profile is empty and to call %s", m.Signal, m.Reason, fix)
			}
		}
		for s := range want {
			t.Errorf("%s not missing", s)
		}
	})
}

func TestProbeGoService(t *testing.T) {
	t.Parallel()
	base, _ := startFixture(t)
	for _, u := range []string{base, base + "/debug/pprof", base + "/debug/pprof/heap?debug=1", strings.TrimPrefix(base, "http://")} {
		if err := Probe(context.Background(), u); err != nil {
			t.Errorf("Probe(%s): %v", u, err)
		}
	}
}

// cumulative sums, for each function, the values of type typ of the samples
// it is on the stack of (once per sample).
func cumulative(t *testing.T, p *profile.Profile, typ string) map[string]int64 {
	t.Helper()
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == typ {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("profile has no sample type %s", typ)
	}
	out := map[string]int64{}
	for _, s := range p.Sample {
		seen := map[string]bool{}
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && !seen[l.Function.Name] {
					seen[l.Function.Name] = true
					out[l.Function.Name] += s.Value[idx]
				}
			}
		}
	}
	return out
}

func cumOf(t *testing.T, p *profile.Profile, typ, fn string) int64 {
	t.Helper()
	return cumulative(t, p, typ)[fn]
}

// topMain is the main.* function with the largest cumulative value, leaving
// out main.main and the workload's closures.
func topMain(t *testing.T, p *profile.Profile, typ string) string {
	t.Helper()
	var top string
	var most int64
	for fn, v := range cumulative(t, p, typ) {
		if !strings.HasPrefix(fn, "main.") || strings.Contains(fn, ".func") || fn == "main.main" {
			continue
		}
		if v > most {
			top, most = fn, v
		}
	}
	if top == "" {
		t.Fatalf("no main.* function in the %s samples", typ)
	}
	return top
}
