package input

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/perf/benchfmt"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// benchText is real `go test -bench -benchmem` output, with a malformed line added.
const benchText = `goos: linux
goarch: amd64
pkg: example.com/smoke
cpu: AMD EPYC
BenchmarkHash-2   	   10000	     20458 ns/op	       0 B/op	       0 allocs/op
BenchmarkSum-2    	   75054	      3191 ns/op	       0 B/op	       0 allocs/op
BenchmarkBroken-2 	   notanumber
PASS
ok  	example.com/smoke	1.602s
`

// cpuProfile records a real CPU profile of this process hashing for 300 ms
// of CPU time (not wall time: a busy machine must not leave it empty),
// gzipped as runtime/pprof writes it.
func cpuProfile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	start, deadline := cpuTime(), time.Now().Add(20*time.Second)
	var sum [32]byte
	for cpuTime()-start < 300*time.Millisecond && time.Now().Before(deadline) {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	pprof.StopCPUProfile()
	return buf.Bytes()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestLoadDirectoryByContent(t *testing.T) {
	dir := t.TempDir()
	prof := cpuProfile(t)
	p, err := profile.ParseData(prof)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if err := p.WriteUncompressed(&raw); err != nil {
		t.Fatal(err)
	}
	// Names say nothing about content on purpose.
	write(t, dir, "a", []byte(benchText))
	write(t, dir, "b.txt", prof)
	write(t, dir, "sub/c.out", raw.Bytes())
	write(t, dir, "d.gz", gz([]byte(benchText)))
	write(t, dir, ".hidden", []byte("ignored"))
	write(t, dir, ".git/config", []byte("ignored"))
	self, err := os.ReadFile("/proc/self/exe")
	if err == nil {
		write(t, dir, "pkg.test", self)
	}

	set, err := Load([]string{dir}, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(set.Bench); got != 4 {
		t.Errorf("benchmark results = %d, want 4 (2 per bench file)", got)
	}
	if got := len(set.Profiles); got != 2 {
		t.Errorf("profiles = %d, want 2", got)
	}
	if len(set.Warnings) != 2 || !strings.HasSuffix(set.Warnings[0], "/a:7: parsing iteration count: invalid syntax") {
		t.Errorf("warnings = %q, want the malformed line 7 of a and of d.gz", set.Warnings)
	}
	want := []string{dir + "/.git: hidden, skipped", dir + "/.hidden: hidden, skipped"}
	if self != nil {
		want = append(want, dir+"/pkg.test: executable, skipped (profiles carry their own symbols)")
	}
	if !slices.Equal(set.Skipped, want) {
		t.Errorf("skipped = %q, want %q", set.Skipped, want)
	}
	if got, want := set.Describe(), "2 benchmark files, 2 profiles"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	prof := cpuProfile(t)
	empty := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	var emptyBuf bytes.Buffer
	if err := empty.Write(&emptyBuf); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
		msg  string
	}{
		{"empty", nil, DefaultLimits, ErrEmpty, "empty file"},
		{"truncated.pb.gz", prof[:len(prof)/2], DefaultLimits, nil, "truncated"},
		{"nosamples.pb.gz", emptyBuf.Bytes(), DefaultLimits, ErrNoSamples, "no samples"},
		{"prose.txt", []byte("hello, this is not a profile\n"), DefaultLimits, ErrUnrecognized, "neither"},
		{"nobench.txt", []byte("goos: linux\nPASS\n"), DefaultLimits, ErrNoBenchmarks, "did -bench match"},
		{"big.txt", bytes.Repeat([]byte("x"), 2048), Limits{MaxFileBytes: 1024}, ErrTooLarge, "larger than"},
		{"bomb.gz", gz(make([]byte, 4<<20)), Limits{MaxFileBytes: 1 << 20}, ErrTooLarge, "decompresses past"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, dir, tc.name, tc.data)
			_, err := Load([]string{p}, tc.lim)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != p {
				t.Errorf("error %v does not name %s", err, p)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

// A 1 GB file is refused from its size, before anything is read.
func TestLoadHugeFileIsRefusedCheaply(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	_, err = Load([]string{p}, DefaultLimits)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load([]string{"/nonexistent/perfhound"}, DefaultLimits)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "/nonexistent/perfhound: no such file") {
		t.Fatalf("err = %v", err)
	}
	_, err = Load([]string{t.TempDir()}, DefaultLimits)
	if !errors.Is(err, ErrNoInputs) {
		t.Fatalf("empty dir: err = %v, want ErrNoInputs", err)
	}
}

// FuzzDetect feeds arbitrary bytes to recognition and parsing: any input
// must end in a kind or an error, never a panic.
func FuzzDetect(f *testing.F) {
	f.Add([]byte(benchText))
	f.Add(cpuProfile(f))
	f.Add([]byte("BenchmarkX 1 2 ns/op\n"))
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Add([]byte("\x7fELF"))
	if seeds, _ := filepath.Glob("../../fixtures/corpus/null-1/base/run-01*"); len(seeds) > 0 {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if profdecode.IsGzip(data) {
			var err error
			if data, err = profdecode.Gunzip(data, 8<<20); err != nil {
				return
			}
		}
		set := &Set{Units: map[benchfmt.UnitMetadataKey]*benchfmt.UnitMetadata{}}
		if err := set.addData("in", data, DefaultLimits); err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FileError", err)
			}
			return
		}
		if len(set.Bench)+len(set.Profiles)+len(set.Skipped) == 0 {
			t.Fatal("Load succeeded with nothing loaded")
		}
	})
}

// TestNestedGzipRefused checks that a profile file gzipped twice is
// refused instead of being inflated by pprof's parser without a bound.
func TestNestedGzipRefused(t *testing.T) {
	var inner, outer bytes.Buffer
	zw := gzip.NewWriter(&inner)
	zw.Write(make([]byte, 64<<20)) // 64 MiB of zeros: about 64 KiB gzipped
	zw.Close()
	zw = gzip.NewWriter(&outer)
	zw.Write(inner.Bytes())
	zw.Close()
	p := filepath.Join(t.TempDir(), "cpu.pprof.gz")
	if err := os.WriteFile(p, outer.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	if _, err := Load([]string{p}, DefaultLimits); !errors.Is(err, ErrNestedGzip) || !errors.As(err, &fe) || fe.File != p {
		t.Errorf("Load of a gzip inside a gzip: %v, want a *FileError naming %s, ErrNestedGzip", err, p)
	}
}

// nonFinite is real `go test -bench` output whose custom metrics are NaN,
// +Inf and -Inf (analyzer/compare/testdata/nonfinite, see its record.sh).
const nonFinite = "../compare/testdata/nonfinite/base.txt"

// Non-finite values are dropped with a note naming the file and line, so
// that they never reach the statistics (a NaN took the U test to 24 GB),
// while the finite values of the same lines are kept.
func TestLoadDropsNonFiniteValues(t *testing.T) {
	set, err := Load([]string{nonFinite}, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	finite := 0
	for _, r := range set.Bench {
		for _, v := range r.Values {
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				f, line := r.Pos()
				t.Fatalf("%s:%d: %s %s reached the set", f, line, r.Name, v.Unit)
			}
			finite++
		}
	}
	// 18 lines of 6 values (ns/op, 3 custom, B/op, allocs/op); Cold's lines
	// lose 2 (+Inf, -Inf), Idle's 3 (NaN).
	if len(set.Bench) != 18 || finite != 18*6-6*2-6*3 {
		t.Errorf("%d results with %d finite values, want 18 with %d", len(set.Bench), finite, 18*6-6*2-6*3)
	}
	want := nonFinite + ":11: BenchmarkCold-2: not finite, dropped: -Inf balance/op, +Inf misses/hit"
	if len(set.Warnings) == 0 || set.Warnings[0] != want {
		t.Fatalf("first warning = %q, want %q", set.Warnings, want)
	}
	if !strings.HasPrefix(set.Warnings[6], nonFinite+":17: BenchmarkIdle-2: not finite, dropped: NaN balance/op, NaN hits/lookup, NaN misses/hit") {
		t.Errorf("warning 7 = %q, want Idle's line 17", set.Warnings[6])
	}
	if len(set.Warnings) != 12 {
		t.Errorf("%d warnings, want one per line with a non-finite value (12)", len(set.Warnings))
	}
}

// A file full of bad lines makes a bounded list of notes: the first few,
// then how many more there were.
func TestLoadWarningsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("pkg: example.com/p\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "BenchmarkX-2\t1000\t%d ns/op\tNaN x/op\n", 100+i%7)
		b.WriteString("BenchmarkBroken-2 notanumber\n")
	}
	p := write(t, t.TempDir(), "many.txt", []byte(b.String()))
	set, err := Load([]string{p}, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Bench) != 1000 {
		t.Errorf("%d results, want 1000", len(set.Bench))
	}
	if n := len(set.Warnings); n != maxWarningsPerFile+1 {
		t.Fatalf("%d warnings, want %d and a count of the rest", n, maxWarningsPerFile+1)
	}
	last := set.Warnings[len(set.Warnings)-1]
	if want := fmt.Sprintf("%s: %d more problems like these not listed", p, 2000-maxWarningsPerFile); last != want {
		t.Errorf("last warning = %q, want %q", last, want)
	}
}

// A file that pprof's parser recognises, or that is binary, but does not
// parse is reported as a broken profile with the parser's reason, not as
// "neither benchmark output nor a profile".
func TestLoadBrokenProfileSaysWhy(t *testing.T) {
	dir := t.TempDir()
	p, err := profile.ParseData(cpuProfile(t))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if err := p.WriteUncompressed(&raw); err != nil {
		t.Fatal(err)
	}
	half := raw.Bytes()[:raw.Len()/2]
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"cut.pb.gz", gz(half), "looks like a pprof profile but does not parse: parsing pprof: "},
		{"cut.pb", half, "looks like a pprof profile but does not parse: parsing pprof: "},
		{"garbage.gz", gz([]byte("\x00\x01\x02\xff binary")), "looks like a pprof profile but does not parse: parsing pprof: "},
		{"nested.gz", gz(gz(raw.Bytes())), "looks like a pprof profile but does not parse: parsing pprof: gzip inside gzip"},
		{"heap.txt", []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\nbroken\n"), "looks like a pprof profile but does not parse: parsing pprof: parsing profile: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{write(t, dir, tc.name, tc.data)}, DefaultLimits)
			if !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadProfile saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "unrecognized profile format") {
				t.Errorf("err = %v: says nothing the parser found", err)
			}
		})
	}
}

// A line longer than benchfmt's scanner takes (64 KiB), such as a huge
// b.Log line, is skipped with a note naming file and line, and the
// results around it are read; before, the whole file failed with
// "bufio.Scanner: token too long". A line over 1 MiB before the first
// result no longer hides the results from recognition either.
func TestLoadLongLines(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{bufio.MaxScanTokenSize, 2 << 20} {
		text := "goos: linux\npkg: example.com/p\n" + strings.Repeat("x", n) + "\n" +
			"BenchmarkA-2\t1000\t100 ns/op\nBenchmarkA-2\t1000\t101 ns/op\nPASS\n"
		p := write(t, dir, fmt.Sprintf("long-%d.txt", n), []byte(text))
		set, err := Load([]string{p}, DefaultLimits)
		if err != nil {
			t.Fatalf("line of %d bytes: %v", n, err)
		}
		if len(set.Bench) != 2 {
			t.Errorf("line of %d bytes: %d results, want 2", n, len(set.Bench))
		}
		want := fmt.Sprintf("%s:3: line of %d bytes skipped (longer than %d)", p, n, maxLine)
		if len(set.Warnings) != 1 || set.Warnings[0] != want {
			t.Errorf("warnings = %q, want %q", set.Warnings, want)
		}
		if f, line := set.Bench[1].Pos(); f != p || line != 5 {
			t.Errorf("second result at %s:%d, want %s:5", f, line, p)
		}
	}
	// The longest line benchfmt takes is read as it is.
	text := "BenchmarkA-2\t1000\t100 ns/op\n" + "BenchmarkA-2\tnotanumber\t" + strings.Repeat("Y", maxLine-24) + "\n"
	set, err := Load([]string{write(t, dir, "max.txt", []byte(text))}, DefaultLimits)
	if err != nil || len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0], "max.txt:2: parsing iteration count") || strings.Contains(set.Warnings[0], "skipped") {
		t.Errorf("a line of %d bytes: err %v, warnings %q, want benchfmt's own note", maxLine, err, set.Warnings)
	}
}
