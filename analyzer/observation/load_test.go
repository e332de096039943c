package observation

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/internal/memcap"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// savedCopy saves the sample observation and returns its directory and
// index, for a test to damage.
func savedCopy(t *testing.T) (dir string, index []byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "obs")
	if err := Save(sampleObservation(), dir); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, index
}

// loadWithin is Load that fails the test if it does not return in a
// minute: a FIFO in an observation used to block it forever.
func loadWithin(t *testing.T, dir string) (*Observation, error) {
	t.Helper()
	type result struct {
		o   *Observation
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, err := Load(dir)
		done <- result{o, err}
	}()
	select {
	case r := <-done:
		return r.o, r.err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%s) blocked for a minute", dir)
		return nil, nil
	}
}

func replaceWithFIFO(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRefusesFIFO(t *testing.T) {
	for _, name := range []string{indexFile, filepath.Join(profilesDir, "001-ebpf-cpu.pb.gz")} {
		t.Run(name, func(t *testing.T) {
			dir, _ := savedCopy(t)
			path := filepath.Join(dir, name)
			replaceWithFIFO(t, path)
			_, err := loadWithin(t, dir)
			if !errors.Is(err, ErrDamaged) || !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path+": named pipe (FIFO), not a regular file") {
				t.Errorf("Load = %v; want ErrDamaged, ErrNotRegular naming %s", err, path)
			}
		})
	}
}

// An index naming one profile several times made Load parse it as many
// times: 42 KB named eight times took 3 GB. Two entries for the same file,
// by the same name, another spelling, or a symlink, are refused.
func TestLoadRefusesDuplicateEntries(t *testing.T) {
	for _, tc := range []struct {
		name, other string
		link        bool
	}{
		{"same name", "profiles/000-ebpf-cpu.pb.gz", false},
		{"another spelling", "profiles/../profiles/./000-ebpf-cpu.pb.gz", false},
		{"a symlink", "profiles/link.pb.gz", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, index := savedCopy(t)
			if tc.link {
				if err := os.Symlink("000-ebpf-cpu.pb.gz", filepath.Join(dir, filepath.FromSlash(tc.other))); err != nil {
					t.Fatal(err)
				}
			}
			index = bytes.Replace(index, []byte(`"profiles/002-pprof-heap.pb.gz"`), []byte(`"`+tc.other+`"`), 1)
			if err := os.WriteFile(filepath.Join(dir, indexFile), index, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadWithin(t, dir)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "profiles/000-ebpf-cpu.pb.gz") || !strings.Contains(err.Error(), "more than once") {
				t.Errorf("Load = %v; want ErrDamaged naming the file named twice", err)
			}
		})
	}
}

// A profile of an observation whose parse would cost far more than its
// size is refused, from its counts, before parsing: it is not damaged,
// only over the run's budget, and nothing stays charged.
func TestLoadWithBudget(t *testing.T) {
	// Should the budget ever stop working, the parse dies in a capped
	// child instead of taking 480 MB beside every other job.
	if !memcap.Child(t, 512<<20) {
		return
	}
	dir, _ := savedCopy(t)
	b := profdecode.NewBudget(1 << 30)
	o, err := LoadWith(dir, LoadOptions{Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, p := range o.Profiles {
		var buf bytes.Buffer
		p.Profile.WriteUncompressed(&buf)
		want += profdecode.Measure(buf.Bytes()).Memory()
	}
	if b.Used() != want {
		t.Errorf("budget used %d after the load, want the profiles' %d", b.Used(), want)
	}

	wire := testprof.Deep(20_000, 1_000)
	cost := profdecode.Measure(wire).Memory()
	costly := filepath.Join(dir, profilesDir, "001-ebpf-cpu.pb.gz")
	if err := os.WriteFile(costly, testprof.Gzip(wire), 0o644); err != nil {
		t.Fatal(err)
	}
	b = profdecode.NewBudget(64 << 20)
	n := testprof.Allocated(func() { _, err = LoadWith(dir, LoadOptions{Budget: b}) })
	if !errors.Is(err, profdecode.ErrOverBudget) || errors.Is(err, ErrDamaged) || !strings.HasPrefix(err.Error(), costly+": ") {
		t.Fatalf("LoadWith = %v; want ErrOverBudget naming %s, not damaged", err, costly)
	}
	if n > uint64(cost)/4 || b.Used() != 0 {
		t.Errorf("LoadWith allocated %d MB for a profile whose parse costs %d MB, and left %d charged", n>>20, cost>>20, b.Used())
	}
	// A gzip bomb in its place is refused as it inflates.
	if err := os.WriteFile(costly, testprof.Bomb(128), 0o644); err != nil {
		t.Fatal(err)
	}
	n = testprof.Allocated(func() { _, err = LoadWith(dir, LoadOptions{Budget: b}) })
	// A buffer that doubles as it grows allocates at most twice its last
	// size, and the last is within the budget.
	if !errors.Is(err, profdecode.ErrOverBudget) || !strings.HasPrefix(err.Error(), costly+": ") || n > 2*64<<20+8<<20 || b.Used() != 0 {
		t.Fatalf("LoadWith of a gzip bomb = %v, allocated %d MB, left %d charged", err, n>>20, b.Used())
	}
}
