package store

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
)

const crashChildEnv = "PERFHOUND_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(findingsChildEnv); dir != "" {
		if err := findingsChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashWindows is what the writer stores per window: the host and three
// processes.
const crashProcs = 3

// crashChild writes windows, 10 s apart from t0, until it is killed,
// saying "committed N" once Put of window N has returned.
func crashChild(dir string) error {
	m, err := makeWindows(crashProcs)
	if err != nil {
		return err
	}
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		if err := s.Put(m.batch(t0.Add(time.Duration(i) * 10 * time.Second))); err != nil {
			return err
		}
		fmt.Printf("committed %d\n", i)
	}
}

// TestKill9 kills a process writing windows with SIGKILL at a random
// point, five times: each time the store opens again without repair,
// bbolt's check is clean, every window whose Put returned is there, and
// every window there is whole (its host record and all its processes').
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary five times")
	}
	m := newWindowMaker(t, crashProcs)
	wantCPU := sumOf(observation.KindCPU, m.procs[0])
	for round := range 5 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 3 + rand.IntN(20)
		last := -1
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
			if err != nil {
				t.Fatalf("round %d: the writer said %q", round, sc.Text())
			}
			last = n
			if n+1 == killAfter {
				// Somewhere in the next window's write.
				time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		// What it said before it died is still in the pipe: the windows
		// it committed while we slept.
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed ")); err == nil {
				last = n
			}
		}
		cmd.Wait()
		if last < 0 {
			t.Fatalf("round %d: the writer committed nothing: %s", round, stderr.String())
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		hosts, err := s.HostRange(t0, t0.Add(time.Hour), observation.KindCPU)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) < last+1 || len(hosts) > last+2 {
			t.Fatalf("round %d: %d host records after %d committed windows", round, len(hosts), last+1)
		}
		for _, svc := range m.names {
			rs, err := s.Range(Query{Service: svc, From: t0, To: t0.Add(time.Hour), Kinds: []observation.ProfileKind{observation.KindCPU}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != len(hosts) {
				t.Fatalf("round %d: %s has %d windows, the host %d: a window stored in part", round, svc, len(rs), len(hosts))
			}
			for i, r := range rs {
				if !r.Start.Equal(t0.Add(time.Duration(i)*10*time.Second)) || (svc == m.names[0] && sumOf(observation.KindCPU, r.Obs) != wantCPU) {
					t.Fatalf("round %d: %s window %d at %s, cpu %d", round, svc, i, r.Start, sumOf(observation.KindCPU, r.Obs))
				}
			}
		}
		t.Logf("round %d: killed after %d committed windows, %d stored", round, last+1, len(hosts))
		s.Close()
	}
}

// TestDiskFull fills a small filesystem: the write that finds it full
// drops the oldest hours, is stored, and says so; the store keeps
// taking windows, stays sound, and opens again.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	m := newWindowMaker(t, 8)
	s, err := Open(filepath.Join(dir, "data"), Options{MaxBytes: 1 << 40, Rollups: []Rollup{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	// A window every 10 minutes: six to an hour.
	var full []*DiskFullError
	i := 0
	for ; i < 400 && len(full) < 5; i++ {
		err := s.Put(m.batch(t0.Add(time.Duration(i) * 10 * time.Minute)))
		var df *DiskFullError
		switch {
		case errors.As(err, &df):
			if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("window %d: %v does not wrap ErrDiskFull and ENOSPC", i, err)
			}
			full = append(full, df)
			t.Logf("window %d: %v", i, err)
		case err != nil:
			t.Fatalf("window %d: %v", i, err)
		}
	}
	if len(full) == 0 {
		t.Fatalf("%d windows did not fill 8 MiB", i)
	}
	stored := 0
	for _, df := range full {
		if df.Stored {
			stored++
		}
		if len(df.Dropped) == 0 {
			t.Errorf("a full disk dropped nothing: %v", df)
		}
	}
	if stored == 0 {
		t.Fatal("no window was stored after dropping old data")
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	newest := t0.Add(time.Duration(i-1) * 10 * time.Minute)
	if st.DroppedHours == 0 || !st.Oldest.After(t0) || !st.Newest.Equal(newest.Truncate(time.Hour)) {
		t.Errorf("after a full disk: %+v", st)
	}
	if rs, err := s.Range(Query{Service: m.names[0], From: newest, To: newest.Add(time.Second)}); err != nil || len(rs) != 1 {
		t.Errorf("the newest window: %d records, %v", len(rs), err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	s.Close()
	if s, err = Open(filepath.Join(dir, "data"), Options{}); err != nil {
		t.Fatalf("reopening a store that filled its disk: %v", err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
