package observation

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func sampleProfile(fn string, v int64) *profile.Profile {
	f := &profile.Function{ID: 1, Name: fn, SystemName: fn, Filename: "main.go"}
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x500000, File: "/bin/x", HasFunctions: true}
	l := &profile.Location{ID: 1, Mapping: m, Address: 0x401000, Line: []profile.Line{{Function: f, Line: 7}}}
	return &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10101010,
		TimeNanos:  time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano(),
		Sample: []*profile.Sample{{
			Location: []*profile.Location{l},
			Value:    []int64{v, v * 10101010},
			Label:    map[string][]string{"comm": {"x"}},
			NumLabel: map[string][]int64{"pid": {42}},
		}},
		Mapping:  []*profile.Mapping{m},
		Location: []*profile.Location{l},
		Function: []*profile.Function{f},
	}
}

func sampleObservation() *Observation {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	return &Observation{
		Meta: Meta{
			Target:     Target{Kind: TargetProcess, PID: 42, Labels: map[string]string{"service": "x"}},
			Host:       "vm",
			Kernel:     "6.18.44",
			CPUs:       2,
			Memory:     24 << 30,
			Start:      start,
			Duration:   10 * time.Second,
			Collectors: map[string]string{"bpf": "test"},
		},
		Profiles: []Profile{
			{Kind: KindCPU, Source: "ebpf", Profile: sampleProfile("main.spin", 90)},
			{Kind: KindCPU, Source: "ebpf", Labels: map[string]string{"pid": "43"}, Profile: sampleProfile("main.other", 10)},
			{Kind: KindHeap, Source: "pprof", Profile: sampleProfile("main.alloc", 3)},
		},
		Series: []Series{{
			Name: "host.cpu", Unit: "cores", Labels: map[string]string{"cpu": "all", "mode": "user"},
			Points: []Point{{start.Add(time.Second), 1.5}, {start.Add(2 * time.Second), 1.25}},
		}},
		Histograms: []Histogram{{Name: "runq.latency", Unit: "nanoseconds", Labels: map[string]string{"pid": "42"}, Slots: []uint64{0, 1, 5}, Count: 6, Sum: 50}},
		Missing:    []Missing{{Signal: "host.psi", Reason: "kernel without PSI"}},
	}
}

// profileBytes serialises a profile for comparison: the parsed form has
// pointers that differ between two equal profiles.
func profileBytes(t *testing.T, p *profile.Profile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	o := sampleObservation()
	dir := filepath.Join(t.TempDir(), "obs")
	if err := Save(o, dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Profiles) != len(o.Profiles) {
		t.Fatalf("%d profiles back, want %d", len(got.Profiles), len(o.Profiles))
	}
	for i := range o.Profiles {
		if !bytes.Equal(profileBytes(t, got.Profiles[i].Profile), profileBytes(t, o.Profiles[i].Profile)) {
			t.Errorf("profile %d differs after the round trip", i)
		}
		got.Profiles[i].Profile, o.Profiles[i].Profile = nil, nil
	}
	if !reflect.DeepEqual(got, o) {
		t.Errorf("round trip changed the observation:\n got %+v\nwant %+v", got, o)
	}
	// Saving again over it is refused; Replace replaces it.
	if err := Save(sampleObservation(), dir); !errors.Is(err, ErrExists) {
		t.Fatalf("Save over an observation: %v, want ErrExists", err)
	}
	if err := Replace(sampleObservation(), dir); err != nil {
		t.Fatalf("Replace of an observation: %v", err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("loading the replacement: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".obs*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestReplaceKeepsForeignFiles: Replace deletes only what the format
// wrote; a directory holding anything else is refused, whatever its place.
func TestReplaceKeepsForeignFiles(t *testing.T) {
	for _, tc := range []struct{ name, file, named string }{
		{"beside the index", "notes.txt", "notes.txt"},
		{"among the profiles", filepath.Join(profilesDir, "extra.pb.gz"), filepath.Join(profilesDir, "extra.pb.gz")},
		{"in a directory of its own", filepath.Join("mine", "data.csv"), "mine" + string(filepath.Separator)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "obs")
			if err := Save(sampleObservation(), dir); err != nil {
				t.Fatal(err)
			}
			index, _ := os.ReadFile(filepath.Join(dir, indexFile))
			foreign := filepath.Join(dir, tc.file)
			os.MkdirAll(filepath.Dir(foreign), 0o755)
			if err := os.WriteFile(foreign, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, save := range []func(*Observation, string) error{Save, Replace} {
				err := save(sampleObservation(), dir)
				if err == nil {
					t.Fatal("saved over a directory with someone's file")
				}
				if _, serr := os.Stat(foreign); serr != nil {
					t.Fatalf("%v; and the file is gone", err)
				}
				if b, _ := os.ReadFile(filepath.Join(dir, indexFile)); !bytes.Equal(b, index) {
					t.Fatalf("%v; and the observation changed", err)
				}
			}
			if err := CanSave(dir, true); !errors.Is(err, ErrOccupied) || !strings.Contains(err.Error(), ": "+tc.named+" not part") {
				t.Errorf("CanSave: %v, want ErrOccupied naming %s", err, tc.named)
			}
		})
	}
	// Profiles named as an older version named them are the format's too,
	// when the index lists them.
	dir := filepath.Join(t.TempDir(), "obs")
	if err := Save(sampleObservation(), dir); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(dir, indexFile))
	os.Rename(filepath.Join(dir, profilesDir, "000-ebpf-cpu.pb.gz"), filepath.Join(dir, profilesDir, "ebpf-cpu.pb.gz"))
	os.WriteFile(filepath.Join(dir, indexFile), bytes.Replace(index, []byte("000-ebpf-cpu.pb.gz"), []byte("ebpf-cpu.pb.gz"), 1), 0o644)
	if err := Replace(sampleObservation(), dir); err != nil {
		t.Fatalf("Replace of an observation with older profile names: %v", err)
	}
}

// TestRemoveOwn: what was not the format's stays, and its directory too
// (a file added to an observation after Replace checked it).
func TestRemoveOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "obs")
	if err := Save(sampleObservation(), dir); err != nil {
		t.Fatal(err)
	}
	files, err := ownFiles(dir, true)
	if err != nil || len(files) != 5 {
		t.Fatalf("ownFiles: %v, %v; want the index, 3 profiles and their directory", files, err)
	}
	late := filepath.Join(dir, profilesDir, "late.txt")
	os.WriteFile(late, []byte("mine"), 0o644)
	removeOwn(dir, files)
	if _, err := os.Stat(late); err != nil {
		t.Fatalf("removeOwn deleted a file the format did not write: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(left) != 1 {
		t.Errorf("left %v, want only %s", left, late)
	}
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err == nil {
		t.Error("the old index stayed")
	}
}

func TestSaveRefusesToClobber(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(sampleObservation(), dir); err == nil || !strings.Contains(err.Error(), "not an observation") {
		t.Fatalf("Save over a foreign directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal("the foreign file is gone")
	}
	// Another tool's observation.json is not ours either.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, indexFile), []byte(`{"format":"someone-else"}`), 0o644)
	if err := Save(sampleObservation(), other); err == nil {
		t.Fatal("Save overwrote a directory whose observation.json is another format")
	}
}

func TestSaveRejectsNaN(t *testing.T) {
	o := sampleObservation()
	o.Series[0].Points[0].Value = math.NaN()
	err := Save(o, filepath.Join(t.TempDir(), "obs"))
	if err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Fatalf("NaN saved: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "obs")
	if err := Save(sampleObservation(), saved); err != nil {
		t.Fatal(err)
	}
	index, _ := os.ReadFile(filepath.Join(saved, indexFile))
	copyTo := func(t *testing.T, mutate func(dir string)) string {
		dir := filepath.Join(t.TempDir(), "obs")
		if err := os.CopyFS(dir, os.DirFS(saved)); err != nil {
			t.Fatal(err)
		}
		mutate(dir)
		return dir
	}
	for _, tc := range []struct {
		name   string
		mutate func(dir string)
		want   error
		names  string
	}{
		{"empty dir", func(dir string) { os.RemoveAll(dir); os.Mkdir(dir, 0o755) }, ErrNotObservation, "observation.json"},
		{"foreign json", func(dir string) {
			os.WriteFile(filepath.Join(dir, indexFile), []byte(`{"format":"other","version":1}`), 0o644)
		}, ErrNotObservation, "other"},
		{"future version", func(dir string) {
			os.WriteFile(filepath.Join(dir, indexFile), bytes.Replace(index, []byte(`"version": 1`), []byte(`"version": 99`), 1), 0o644)
		}, ErrVersion, "99"},
		{"truncated index", func(dir string) { os.WriteFile(filepath.Join(dir, indexFile), index[:len(index)/2], 0o644) }, ErrDamaged, indexFile},
		{"missing profile", func(dir string) { os.RemoveAll(filepath.Join(dir, profilesDir)) }, ErrDamaged, ".pb.gz"},
		{"truncated profile", func(dir string) {
			p := filepath.Join(dir, profilesDir, "000-ebpf-cpu.pb.gz")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, ErrDamaged, "000-ebpf-cpu.pb.gz"},
		{"escaping path", func(dir string) {
			os.WriteFile(filepath.Join(dir, indexFile), bytes.Replace(index, []byte(`"profiles/000-ebpf-cpu.pb.gz"`), []byte(`"../../etc/passwd"`), 1), 0o644)
		}, ErrDamaged, "leaves the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(copyTo(t, tc.mutate))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.names) {
				t.Errorf("Load: %v; want %v naming %q", err, tc.want, tc.names)
			}
		})
	}
}

func FuzzLoadIndex(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "seed")
	if err := Save(sampleObservation(), dir); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(filepath.Join(dir, indexFile))
	f.Add(seed)
	f.Add([]byte(`{"format":"perfhound.observation","version":1,"series":[{"points":[[1,2,3]]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, indexFile), b, 0o644)
		Load(d) // must not panic
	})
}

// TestIsSaved: an observation directory is told by its index file alone;
// what is not one, Load refuses as not an observation or damaged.
func TestIsSaved(t *testing.T) {
	saved, _ := savedCopy(t)
	fifo, _ := savedCopy(t)
	replaceWithFIFO(t, filepath.Join(fifo, indexFile))
	indexDir := filepath.Join(t.TempDir(), "obs")
	if err := os.MkdirAll(filepath.Join(indexDir, indexFile), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "bench.txt")
	if err := os.WriteFile(file, []byte("BenchmarkX 1 2 ns/op\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir string
		want      bool
		loadErr   error // what Load says of it, nil when it loads
	}{
		{"saved", saved, true, nil},
		{"recorded", filepath.Join("..", "..", "fixtures", "observations", "io-fsync"), true, nil},
		{"index is a FIFO", fifo, true, ErrDamaged},
		{"index is a directory", indexDir, false, ErrDamaged},
		{"empty directory", empty, false, ErrNotObservation},
		{"missing", filepath.Join(empty, "nothing"), false, ErrNotObservation},
		{"a file", file, false, nil},
	} {
		if got := IsSaved(c.dir); got != c.want {
			t.Errorf("%s: IsSaved = %v, want %v", c.name, got, c.want)
		}
		if c.name == "a file" {
			continue // Load of a file fails with the OS's error (not a directory)
		}
		_, err := loadWithin(t, c.dir)
		if c.loadErr == nil && err != nil || c.loadErr != nil && !errors.Is(err, c.loadErr) {
			t.Errorf("%s: Load = %v, want %v", c.name, err, c.loadErr)
		}
	}
}
