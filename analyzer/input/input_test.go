package input

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
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

// TestNestedGzipRefused checks that a profile gzipped twice is refused
// instead of being inflated by pprof's parser without a bound.
func TestNestedGzipRefused(t *testing.T) {
	var inner, outer bytes.Buffer
	zw := gzip.NewWriter(&inner)
	zw.Write(make([]byte, 64<<20)) // 64 MiB of zeros: about 64 KiB gzipped
	zw.Close()
	zw = gzip.NewWriter(&outer)
	zw.Write(inner.Bytes())
	zw.Close()
	if _, err := DecodeProfile(outer.Bytes(), 1<<20); !errors.Is(err, ErrNestedGzip) {
		t.Errorf("DecodeProfile of a gzip inside a gzip: %v, want ErrNestedGzip", err)
	}
	if _, err := ParseProfile(inner.Bytes()); !errors.Is(err, ErrNestedGzip) {
		t.Errorf("ParseProfile of gzip data: %v, want ErrNestedGzip", err)
	}
	if _, err := DecodeProfile(inner.Bytes(), 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("DecodeProfile past its cap: %v, want ErrTooLarge", err)
	}
}
