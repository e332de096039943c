package input

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/internal/memcap"
	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// A profile whose parse would cost far more than its size is refused from
// its counts, before parsing: what the load allocates stays a small part
// of what the parse would have, and the budget is never exceeded.
func TestLoadRefusesCostlyProfileBeforeParsing(t *testing.T) {
	// Should the budget ever stop working, the parse dies in a capped
	// child instead of taking 480 MB beside every other job.
	if !memcap.Child(t, 512<<20) {
		return
	}
	dir := t.TempDir()
	wire := testprof.Deep(20_000, 1_000) // 20 MB on the wire
	cost := profdecode.Measure(wire).Memory()
	zipped := gz(wire)
	file := write(t, dir, "cpu.pb.gz", zipped)
	if ratio := cost / int64(len(zipped)); ratio < 5_000 {
		t.Fatalf("the crafted profile parses into only %d× its size", ratio)
	}
	b := profdecode.NewBudget(64 << 20)
	var err error
	n := testprof.Allocated(func() { _, err = Load([]string{dir}, Limits{Budget: b}) })
	var fe *FileError
	if !errors.Is(err, ErrOverBudget) || !errors.As(err, &fe) || fe.File != file {
		t.Fatalf("Load = %v; want ErrOverBudget naming %s", err, file)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%.1f MiB", float64(cost)/(1<<20))) || !strings.Contains(err.Error(), "of 64.0 MiB") {
		t.Errorf("error %q does not say what the profile would take (%d) and the budget", err, cost)
	}
	if n > uint64(cost)/4 {
		t.Errorf("Load allocated %d MB for a profile whose parse costs %d MB: it parsed", n>>20, cost>>20)
	}
	if b.Used() != 0 {
		t.Errorf("%d bytes still charged after a failed load", b.Used())
	}
	t.Logf("file %d KB, parse %d MB, Load allocated %d MB", len(zipped)>>10, cost>>20, n>>20)
}

// A gzip bomb among real profiles is refused as it inflates, under a
// small budget, and every charge of the failed load is given back.
func TestLoadGzipBombInDirectory(t *testing.T) {
	dir := t.TempDir()
	prof := cpuProfile(t)
	for i := range 4 {
		write(t, dir, fmt.Sprintf("cpu-%d.pb.gz", i), prof)
	}
	bomb := write(t, dir, "cpu-bomb.pb.gz", testprof.Bomb(128))
	b := profdecode.NewBudget(16 << 20)
	var err error
	n := testprof.Allocated(func() { _, err = Load([]string{dir}, Limits{Budget: b}) })
	var fe *FileError
	if !errors.Is(err, ErrOverBudget) || !errors.As(err, &fe) || fe.File != bomb {
		t.Fatalf("Load = %v; want ErrOverBudget naming %s", err, bomb)
	}
	if n > 64<<20 || b.Used() != 0 {
		t.Errorf("Load allocated %d MB and left %d bytes charged; want under 64 MB and none", n>>20, b.Used())
	}
	// Without the bomb the same budget holds the real profiles.
	set, err := Load([]string{filepath.Join(dir, "cpu-0.pb.gz"), filepath.Join(dir, "cpu-1.pb.gz")}, Limits{Budget: b})
	if err != nil || len(set.Profiles) != 2 {
		t.Fatalf("real profiles under the budget: %v", err)
	}
	if b.Used() == 0 || b.Used() > b.Max() {
		t.Errorf("budget used %d of %d after loading two profiles", b.Used(), b.Max())
	}
}

// Profiles read in parallel fit a budget they fit one at a time: a file
// refused only because others were in memory beside it is read again.
func TestLoadParallelFitsWhatSequentialFits(t *testing.T) {
	dir := t.TempDir()
	wire := testprof.Deep(2_000, 200) // about 10 MB parsed, 400 KB decompressed
	cost := profdecode.Measure(wire).Memory()
	zipped := gz(wire)
	for i := range 8 {
		write(t, dir, fmt.Sprintf("cpu-%d.pb.gz", i), zipped)
	}
	// Room for the eight parsed profiles and one file's buffers (what it
	// read, and inflated into a buffer that doubles as it grows), no more.
	b := profdecode.NewBudget(8*cost + int64(len(zipped)) + 2*int64(len(wire)))
	set, err := Load([]string{dir}, Limits{Budget: b})
	if err != nil || len(set.Profiles) != 8 {
		t.Fatalf("Load = %v", err)
	}
	if b.Used() != 8*cost {
		t.Errorf("budget used %d, want the eight profiles' %d", b.Used(), 8*cost)
	}
}

// benchfmt copies a file's whole configuration into every result: a file
// of many configuration lines and many results costs their product, a
// few hundred KB of text hundreds of MB. Results are charged as parsed.
func TestLoadChargesBenchmarkResults(t *testing.T) {
	var text strings.Builder
	for i := range 500 {
		fmt.Fprintf(&text, "key%d: value of configuration line %d\n", i, i)
	}
	for range 5_000 {
		text.WriteString("BenchmarkX 1 1 ns/op\n")
	}
	file := write(t, t.TempDir(), "bench.txt", []byte(text.String()))
	b := profdecode.NewBudget(16 << 20)
	var err error
	n := testprof.Allocated(func() { _, err = Load([]string{file}, Limits{Budget: b}) })
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), file+": benchmark results: ") {
		t.Fatalf("Load of %d KB = %v; want ErrOverBudget naming the file", text.Len()>>10, err)
	}
	if n > 64<<20 || b.Used() != 0 {
		t.Errorf("Load allocated %d MB and left %d charged", n>>20, b.Used())
	}
	// The same results without the configuration fit.
	small := write(t, t.TempDir(), "bench.txt", []byte(strings.Repeat("BenchmarkX 1 1 ns/op\n", 5_000)))
	if set, err := Load([]string{small}, Limits{Budget: b}); err != nil || len(set.Bench) != 5_000 {
		t.Fatalf("Load without configuration = %v", err)
	}
}
