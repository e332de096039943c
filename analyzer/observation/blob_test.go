package observation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// fixtureDirs are the committed observations: real windows of real
// workloads.
func fixtureDirs(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob("../../fixtures/observations/*")
	var dirs []string
	for _, d := range all {
		if IsSaved(d) {
			dirs = append(dirs, d)
		}
	}
	if err != nil || len(dirs) < 15 {
		t.Fatalf("%d fixture observations: %v", len(dirs), err)
	}
	return dirs
}

// sameObservation fails t unless got and want hold the same meta,
// profiles (byte for byte), series, histograms and missing signals.
func sameObservation(t *testing.T, name string, got, want *Observation) {
	t.Helper()
	if len(got.Profiles) != len(want.Profiles) {
		t.Fatalf("%s: %d profiles back, want %d", name, len(got.Profiles), len(want.Profiles))
	}
	for i := range want.Profiles {
		g, w := got.Profiles[i], want.Profiles[i]
		if g.Kind != w.Kind || g.Source != w.Source || !reflect.DeepEqual(g.Labels, w.Labels) {
			t.Errorf("%s: profile %d is %s/%s %v, want %s/%s %v", name, i, g.Kind, g.Source, g.Labels, w.Kind, w.Source, w.Labels)
		}
		if !bytes.Equal(profileBytes(t, g.Profile), profileBytes(t, w.Profile)) {
			t.Errorf("%s: profile %d (%s) differs after the round trip", name, i, w.Kind)
		}
	}
	if !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("%s: meta\n got %+v\nwant %+v", name, got.Meta, want.Meta)
	}
	if !reflect.DeepEqual(got.Series, want.Series) {
		t.Errorf("%s: series differ after the round trip", name)
	}
	if !reflect.DeepEqual(got.Histograms, want.Histograms) {
		t.Errorf("%s: histograms differ after the round trip", name)
	}
	if !reflect.DeepEqual(got.Missing, want.Missing) {
		t.Errorf("%s: missing %v, want %v", name, got.Missing, want.Missing)
	}
}

// TestBlobRoundTripFixtures: every committed observation comes back from
// Marshal and Unmarshal as Load read it, and costs the budget exactly
// what LoadWith charges for it.
func TestBlobRoundTripFixtures(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		lb := profdecode.NewBudget(1 << 30)
		want, err := LoadWith(dir, LoadOptions{Budget: lb})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(want)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		ub := profdecode.NewBudget(1 << 30)
		got, err := Unmarshal(b, LoadOptions{Budget: ub})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		sameObservation(t, dir, got, want)
		if ub.Used() != lb.Used() || ub.Used() == 0 {
			t.Errorf("%s: Unmarshal keeps %d bytes charged, LoadWith %d", dir, ub.Used(), lb.Used())
		}
	}
}

// TestBlobSampleRoundTrip: the sample observation (labels on a target and
// a profile, several kinds) survives too, and its first bytes say what it is.
func TestBlobSampleRoundTrip(t *testing.T) {
	o := sampleObservation()
	b, err := Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if !IsBlob(b) || b[4] != BlobVersion {
		t.Fatalf("blob starts %q", b[:5])
	}
	got, err := Unmarshal(b, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameObservation(t, "sample", got, o)
}

// TestBlobKinds: UnmarshalKinds keeps the profiles asked for, in order,
// parses no other, and none with no kind named.
func TestBlobKinds(t *testing.T) {
	o := sampleObservation()
	b, err := Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	all := profdecode.NewBudget(1 << 30)
	if _, err := Unmarshal(b, LoadOptions{Budget: all}); err != nil {
		t.Fatal(err)
	}
	cpu := profdecode.NewBudget(1 << 30)
	got, err := UnmarshalKinds(b, LoadOptions{Budget: cpu}, KindCPU)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Profiles) != 2 || got.Profiles[0].Kind != KindCPU || got.Profiles[1].Labels["pid"] != "43" {
		t.Fatalf("UnmarshalKinds(cpu) kept %+v", got.Profiles)
	}
	if cpu.Used() >= all.Used() {
		t.Errorf("one kind charged %d, all kinds %d", cpu.Used(), all.Used())
	}
	none := profdecode.NewBudget(1 << 30)
	got, err = UnmarshalKinds(b, LoadOptions{Budget: none})
	if err != nil || len(got.Profiles) != 0 || len(got.Series) != 1 || none.Used() != 0 {
		t.Fatalf("UnmarshalKinds() = %d profiles, %d series, %d charged, %v", len(got.Profiles), len(got.Series), none.Used(), err)
	}
}

func TestBlobMarshalRefuses(t *testing.T) {
	o := sampleObservation()
	o.Profiles[1].Profile = nil
	if _, err := Marshal(o); err == nil {
		t.Error("Marshal of a nil profile succeeded")
	}
}

// section returns a blob section holding frame, said to inflate to raw
// bytes.
func section(raw int, frame []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(raw))
	b = binary.AppendUvarint(b, uint64(len(frame)))
	return append(b, frame...)
}

func zstdFrame(t testing.TB, data []byte) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.EncodeAll(data, nil)
}

// TestBlobDamage: each way a blob can be wrong is an error wrapping the
// sentinel that says so, with nothing left charged.
func TestBlobDamage(t *testing.T) {
	good, err := Marshal(sampleObservation())
	if err != nil {
		t.Fatal(err)
	}
	head := []byte(blobMagic + "\x01")
	index := zstdFrame(t, []byte(`{"meta":{"target":{"kind":"process"}},"profiles":[{"kind":"cpu","source":"ebpf"}]}`))
	indexRaw := len(`{"meta":{"target":{"kind":"process"}},"profiles":[{"kind":"cpu","source":"ebpf"}]}`)
	const bare = `{"meta":{"target":{"kind":"process"}}}`
	zeros := zstdFrame(t, make([]byte, 64<<20)) // a few KB that inflate to 64 MiB
	bomb := append(append(append([]byte{}, head...), section(indexRaw, index)...), section(64<<20, zeros)...)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotObservation},
		{"a saved index", []byte(`{"format":"perfhound.observation"}`), ErrNotObservation},
		{"magic only", []byte(blobMagic), ErrDamaged},
		{"next version", append([]byte(blobMagic), BlobVersion+1), ErrVersion},
		{"trailing bytes", append(append([]byte{}, good...), 0), ErrDamaged},
		{"index not JSON", append(append([]byte{}, head...), section(3, zstdFrame(t, []byte("{{{")))...), ErrDamaged},
		{"index with an unknown field", append(append([]byte{}, head...), section(9, zstdFrame(t, []byte(`{"x":true}`)))...), ErrDamaged},
		{"index longer than said", append(append([]byte{}, head...), section(indexRaw-1, index)...), ErrDamaged},
		{"index shorter than said", append(append([]byte{}, head...), section(len(bare)+1, zstdFrame(t, []byte(bare)))...), ErrDamaged},
		{"index over its cap", append(append([]byte{}, head...), section(maxIndexBytes+1, index)...), profdecode.ErrTooLarge},
		{"frame not zstd", append(append([]byte{}, head...), section(4, []byte("abcd"))...), ErrDamaged},
		{"profile section missing", append(append([]byte{}, head...), section(indexRaw, index)...), ErrDamaged},
		{"profile not pprof", append(append(append([]byte{}, head...), section(indexRaw, index)...), section(5, zstdFrame(t, []byte{0xff, 0xff, 0xff, 0xff, 0xff}))...), ErrDamaged},
		{"profile gzipped", append(append(append([]byte{}, head...), section(indexRaw, index)...), section(20, zstdFrame(t, testprof.Gzip([]byte("x"))))...), ErrDamaged},
		{"profile over the limit", bomb, profdecode.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bud := profdecode.NewBudget(256 << 20)
			_, err := Unmarshal(tc.b, LoadOptions{Budget: bud, Limits: profdecode.Limits{MaxBytes: 1 << 20}})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unmarshal: %v, want %v", err, tc.want)
			}
			if bud.Used() != 0 {
				t.Errorf("a failed decode left %d bytes charged", bud.Used())
			}
		})
	}
	// Cut anywhere, a sound blob is an error, never a panic.
	for n := range len(good) {
		if _, err := Unmarshal(good[:n], LoadOptions{}); err == nil {
			t.Fatalf("the first %d of %d bytes decoded", n, len(good))
		}
	}
}

// TestBlobBudgetRefusesBeforeInflating: a section that would inflate
// past the budget is refused as it grows, not once inflated: the 64 MiB
// of zeros cost an 8 MiB budget nothing in the end, and never more than
// the budget on the way.
func TestBlobBudgetRefusesBeforeInflating(t *testing.T) {
	idx := []byte(`{"meta":{"target":{"kind":"process"}},"profiles":[{"kind":"cpu","source":"ebpf"}]}`)
	b := append([]byte(blobMagic+"\x01"), section(len(idx), zstdFrame(t, idx))...)
	b = append(b, section(64<<20, zstdFrame(t, make([]byte, 64<<20)))...)
	bud := profdecode.NewBudget(8 << 20)
	var err error
	alloc := testprof.Allocated(func() { _, err = Unmarshal(b, LoadOptions{Budget: bud}) })
	if !errors.Is(err, profdecode.ErrOverBudget) {
		t.Fatalf("Unmarshal: %v, want ErrOverBudget", err)
	}
	if bud.Used() != 0 {
		t.Errorf("left %d bytes charged", bud.Used())
	}
	if alloc > 32<<20 {
		t.Errorf("allocated %d MiB refusing a section over an 8 MiB budget", alloc>>20)
	}
}

// FuzzUnmarshal decodes fuzzed blobs under a small budget: never a panic,
// every error one of the sentinels, nothing charged after a failure, and
// what decodes encodes again.
func FuzzUnmarshal(f *testing.F) {
	good, err := Marshal(sampleObservation())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, dir := range fixtureDirs(f)[:2] {
		o, err := Load(dir)
		if err != nil {
			f.Fatal(err)
		}
		b, err := Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(blobMagic + "\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bud := profdecode.NewBudget(8 << 20)
		o, err := Unmarshal(b, LoadOptions{Budget: bud, Limits: profdecode.Limits{MaxBytes: 1 << 20}})
		if err != nil {
			if !errors.Is(err, ErrNotObservation) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrDamaged) &&
				!errors.Is(err, profdecode.ErrTooLarge) && !errors.Is(err, profdecode.ErrOverBudget) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if bud.Used() != 0 {
				t.Fatalf("a failed decode left %d bytes charged: %v", bud.Used(), err)
			}
			return
		}
		if bud.Used() > bud.Max() {
			t.Fatalf("budget used %d of %d", bud.Used(), bud.Max())
		}
		if _, err := Marshal(o); err != nil {
			t.Fatalf("a decoded blob does not encode: %v", err)
		}
	})
}
