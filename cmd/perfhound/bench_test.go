package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// The speed benchmarks of `perfhound compare` run the whole CLI, from
// reading the files to writing the JSON report, on inputs of realistic size:
// ten CPU profiles a side of about 1 MB each, derived from a real profile of
// the Go compiler (fixtures/profiles, see its README). The same inputs are
// written to disk by TestWriteSpeedInputs for fixtures/profiles/speed.sh,
// which times perfhound against `go tool pprof -diff_base` and benchstat.

const (
	// speedSource is the real profile the inputs are derived from.
	speedSource = "../../fixtures/profiles/compile-cpu.pb.gz"
	// speedRuns is the number of profiles a side.
	speedRuns = 10
	// speedSeed makes the derived profiles the same on every run.
	speedSeed = 20261127
	// speedDraws is how many samples a derived profile draws per sample of
	// the source: a run that long keeps about 95% of the source's distinct
	// stacks (1 - e^-3), so each derived profile is close to the source's
	// size (~1 MB) rather than the ~63% one draw per sample would keep.
	speedDraws = 3
	// speedFunc is the function whose cost the head makes grow: every
	// sample with it on the stack weighs speedSlowdown times more. The
	// register allocator pass is about 7% of the compiler's CPU time in the
	// source profile.
	speedFunc     = "cmd/compile/internal/ssa.regalloc"
	speedSlowdown = 1.10
	// Derived profiles must weigh between these many bytes, gzipped.
	speedMinBytes, speedMaxBytes = 700 << 10, 1500 << 10
)

var speedDir = flag.String("dir", "", "TestWriteSpeedInputs: write the speed benchmark's profiles into `dir`/base and dir/head")

// speedSide derives n profiles from src by multinomial resampling: each
// draws speedDraws×(source samples) samples, with replacement, with
// probability proportional to each source sample's count times its weight
// (speedSlowdown when it has speedFunc on the stack and slow is set, else
// 1). Each result is thus a plausible run of the same program, one
// speedDraws times as long as the source, whose samples differ from the
// source's by sampling noise; a slow one spends ~10% more in speedFunc.
func speedSide(src *profile.Profile, rng *rand.Rand, n int, slow bool) ([]*profile.Profile, error) {
	ci, vi := -1, -1
	for i, st := range src.SampleType {
		switch {
		case st.Type == "samples" && st.Unit == "count":
			ci = i
		case st.Unit == "nanoseconds":
			vi = i
		}
	}
	if ci < 0 || vi < 0 || src.Period <= 0 {
		return nil, fmt.Errorf("%s is not a CPU profile (samples/count and */nanoseconds)", speedSource)
	}
	// Cumulative weights, for drawing a sample by binary search.
	cum := make([]float64, len(src.Sample))
	var total, count float64
	hit := 0
	for i, s := range src.Sample {
		w := float64(s.Value[ci])
		count += w
		if slow && onStack(s, speedFunc) {
			w *= speedSlowdown
			hit++
		}
		total += w
		cum[i] = total
	}
	if slow && hit == 0 {
		return nil, fmt.Errorf("%s: no sample has %s on its stack", speedSource, speedFunc)
	}
	// The slow side draws more samples in all: it ran longer.
	draws := int(speedDraws * total)
	out := make([]*profile.Profile, n)
	for k := range out {
		counts := make([]int64, len(src.Sample))
		for range draws {
			u := rng.Float64() * total
			counts[sort.SearchFloat64s(cum, u)]++
		}
		p := src.Copy()
		p.Sample = p.Sample[:0]
		for i, s := range src.Sample {
			if counts[i] == 0 {
				continue
			}
			ns := *s
			ns.Value = make([]int64, len(s.Value))
			ns.Value[ci] = counts[i]
			ns.Value[vi] = counts[i] * src.Period
			ns.Location = s.Location
			p.Sample = append(p.Sample, &ns)
		}
		p.DurationNanos = int64(float64(src.DurationNanos) * float64(draws) / count)
		p.TimeNanos = src.TimeNanos + int64(k)*p.DurationNanos
		// Drop the locations, functions and mappings no sample uses, as a
		// real profile of this run would not have them.
		p = p.Compact()
		if err := p.CheckValid(); err != nil {
			return nil, err
		}
		out[k] = p
	}
	return out, nil
}

// onStack reports whether fn is a frame of s, inlined or not.
func onStack(s *profile.Sample, fn string) bool {
	for _, l := range s.Location {
		for _, ln := range l.Line {
			if ln.Function != nil && ln.Function.Name == fn {
				return true
			}
		}
	}
	return false
}

// writeSpeedInputs writes the base and head profiles into dir/base and
// dir/head as 01.pb.gz ... 10.pb.gz and returns those two directories and
// the sizes written.
func writeSpeedInputs(dir string) (base, head string, sizes []int64, err error) {
	f, err := os.Open(speedSource)
	if err != nil {
		return "", "", nil, err
	}
	src, err := profile.Parse(f)
	f.Close()
	if err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", speedSource, err)
	}
	rng := rand.New(rand.NewPCG(speedSeed, 0))
	base, head = filepath.Join(dir, "base"), filepath.Join(dir, "head")
	for _, side := range []struct {
		dir  string
		slow bool
	}{{base, false}, {head, true}} {
		ps, err := speedSide(src, rng, speedRuns, side.slow)
		if err != nil {
			return "", "", nil, err
		}
		if err := os.MkdirAll(side.dir, 0o755); err != nil {
			return "", "", nil, err
		}
		for i, p := range ps {
			name := filepath.Join(side.dir, fmt.Sprintf("%02d.pb.gz", i+1))
			out, err := os.Create(name)
			if err != nil {
				return "", "", nil, err
			}
			err = p.Write(out)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return "", "", nil, err
			}
			st, err := os.Stat(name)
			if err != nil {
				return "", "", nil, err
			}
			if st.Size() < speedMinBytes || st.Size() > speedMaxBytes {
				return "", "", nil, fmt.Errorf("%s: %d bytes, want %d..%d", name, st.Size(), speedMinBytes, speedMaxBytes)
			}
			sizes = append(sizes, st.Size())
		}
	}
	return base, head, sizes, nil
}

func BenchmarkCompareProfiles(b *testing.B) {
	base, head, sizes, err := writeSpeedInputs(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var in int64
	for _, s := range sizes {
		in += s
	}
	b.Logf("%d profiles, %.2f MB in all", len(sizes), float64(in)/(1<<20))
	benchCompare(b, base, head, in)
}

// BenchmarkCompareBenchOutput times compare on the `go test -bench` text
// of one recorded corpus pair (fixtures/record/record.sh), profiles left out.
func BenchmarkCompareBenchOutput(b *testing.B) {
	pairs, _ := filepath.Glob("../../fixtures/corpus/*/base")
	sort.Strings(pairs)
	var base, head string
	var n int
	var in int64
	for _, pb := range pairs {
		txt, _ := filepath.Glob(filepath.Join(pb, "*.txt"))
		if len(txt) == 0 {
			continue
		}
		dir := b.TempDir()
		base, head = filepath.Join(dir, "base"), filepath.Join(dir, "head")
		for _, side := range []struct{ from, to string }{{pb, base}, {filepath.Join(filepath.Dir(pb), "head"), head}} {
			files, _ := filepath.Glob(filepath.Join(side.from, "*.txt"))
			if err := os.MkdirAll(side.to, 0o755); err != nil {
				b.Fatal(err)
			}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(side.to, filepath.Base(f)), data, 0o644); err != nil {
					b.Fatal(err)
				}
				n++
				in += int64(len(data))
			}
		}
		b.Logf("%s: %d benchmark files", filepath.Dir(pb), n)
		break
	}
	if base == "" {
		b.Skip("no recorded corpus: fixtures/corpus/*/base holds no .txt files (run fixtures/record/record.sh)")
	}
	benchCompare(b, base, head, in)
}

// benchCompare times the CLI comparing base with head, after checking once
// that it succeeds; in is the input size, for MB/s.
func benchCompare(b *testing.B, base, head string, in int64) {
	b.Helper()
	args := []string{"compare", "--format", "json", "--fail-on", "never", base, head}
	var stderr strings.Builder
	if code := run(args, io.Discard, &stderr); code != exitOK {
		b.Fatalf("perfhound %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	b.SetBytes(in)
	b.ResetTimer()
	for b.Loop() {
		if code := run(args, io.Discard, io.Discard); code != exitOK {
			b.Fatalf("exit %d", code)
		}
	}
}

// TestWriteSpeedInputs writes BenchmarkCompareProfiles's inputs to disk for
// fixtures/profiles/speed.sh:
//
//	go test -run TestWriteSpeedInputs ./cmd/perfhound -args -dir=DIR
func TestWriteSpeedInputs(t *testing.T) {
	if *speedDir == "" {
		t.Skip("no -dir given")
	}
	dir, err := filepath.Abs(*speedDir)
	if err != nil {
		t.Fatal(err)
	}
	_, _, sizes, err := writeSpeedInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d profiles (%v bytes) into %s/{base,head}", len(sizes), sizes, dir)
}

// countText is `go test -bench -benchmem -count runs` output of six
// benchmarks, one file as that command writes it: ns/op with 2% lognormal
// noise around centre (times slow for the head's Hash), MB/s for two of
// them, and constant B/op and allocs/op (all ties).
func countText(runs int, seed uint64, slow float64) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: example.com/count\ncpu: AMD EPYC\n")
	names := []string{"Parse", "Hash", "Sort", "Index", "Render", "Pipeline"}
	for range runs {
		for i, name := range names {
			ns := float64(1000*(i+1)) * math.Exp(0.02*rng.NormFloat64())
			if name == "Hash" {
				ns *= slow
			}
			mbs := ""
			if i%3 == 0 {
				mbs = fmt.Sprintf("\t%8.2f MB/s", 4096/ns*1e3)
			}
			fmt.Fprintf(&b, "Benchmark%s-2\t%8d\t%10.1f ns/op%s\t%8d B/op\t%6d allocs/op\n", name, 100000, ns, mbs, 128*(i+1), i+1)
		}
	}
	b.WriteString("PASS\nok  \texample.com/count\t120.5s\n")
	return []byte(b.String())
}

// BenchmarkCompareBenchCount100 times compare on `go test -count 100`
// output, one file a side: 100 runs per row, where the ratio's interval
// once took 75 s a row.
func BenchmarkCompareBenchCount100(b *testing.B) {
	dir := b.TempDir()
	base, head := filepath.Join(dir, "base.txt"), filepath.Join(dir, "head.txt")
	bt, ht := countText(100, 1, 1), countText(100, 2, 1.10)
	if err := os.WriteFile(base, bt, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(head, ht, 0o644); err != nil {
		b.Fatal(err)
	}
	benchCompare(b, base, head, int64(len(bt)+len(ht)))
}
