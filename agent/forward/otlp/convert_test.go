package otlp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/perfhound/perfhound/agent/forward"
)

// TestConvertDictionaryOnce: every dictionary table holds each entry
// once, and index 0 of each is the zero entry OTLP reserves.
func TestConvertDictionaryOnce(t *testing.T) {
	w := hostWindow(t)
	w.Profiles = append(w.Profiles, liveWindow(t).Profiles...)
	pd, err := Convert(w)
	if err != nil {
		t.Fatal(err)
	}
	d := pd.Dictionary()
	once := func(table string, n int, key func(i int) string) {
		t.Helper()
		seen := map[string]int{}
		for i := range n {
			k := key(i)
			if j, ok := seen[k]; ok {
				t.Errorf("%s: entries %d and %d are both %s", table, j, i, k)
			}
			seen[k] = i
		}
	}
	once("strings", d.StringTable().Len(), func(i int) string { return d.StringTable().At(i) })
	once("functions", d.FunctionTable().Len(), func(i int) string {
		f := d.FunctionTable().At(i)
		return fmt.Sprint(f.NameStrindex(), f.SystemNameStrindex(), f.FilenameStrindex(), f.StartLine())
	})
	once("mappings", d.MappingTable().Len(), func(i int) string {
		m := d.MappingTable().At(i)
		return fmt.Sprint(m.MemoryStart(), m.MemoryLimit(), m.FileOffset(), m.FilenameStrindex(), m.AttributeIndices().AsRaw())
	})
	once("locations", d.LocationTable().Len(), func(i int) string {
		l := d.LocationTable().At(i)
		s := fmt.Sprint(l.MappingIndex(), l.Address())
		for _, ln := range l.Lines().All() {
			s += fmt.Sprint(" ", ln.FunctionIndex(), ln.Line(), ln.Column())
		}
		return s
	})
	once("stacks", d.StackTable().Len(), func(i int) string { return fmt.Sprint(d.StackTable().At(i).LocationIndices().AsRaw()) })
	once("attributes", d.AttributeTable().Len(), func(i int) string {
		a := d.AttributeTable().At(i)
		return fmt.Sprint(a.KeyStrindex(), a.UnitStrindex(), a.Value().Type(), a.Value().AsString())
	})
	if d.StringTable().At(0) != "" || d.FunctionTable().At(0).NameStrindex() != 0 ||
		d.LocationTable().At(0).Lines().Len() != 0 || d.StackTable().At(0).LocationIndices().Len() != 0 ||
		d.MappingTable().At(0).MemoryLimit() != 0 || d.AttributeTable().At(0).KeyStrindex() != 0 || d.LinkTable().Len() != 1 {
		t.Error("index 0 of a table is not the zero entry")
	}
	// The three eBPF profiles share their kernel and libc frames: the
	// shared dictionary holds fewer functions than the profiles do.
	sum := 0
	for _, p := range w.Profiles {
		sum += len(p.Profile.Function)
	}
	if d.FunctionTable().Len()-1 >= sum {
		t.Errorf("%d functions in the dictionary, %d in the profiles: nothing shared", d.FunctionTable().Len()-1, sum)
	}
}

// TestConvertMainMapping: a window without identity labels takes the
// executable's name and build ID from a one-process profile's main
// mapping.
func TestConvertMainMapping(t *testing.T) {
	w := liveWindow(t)
	w.Labels = nil
	pd, err := Convert(w)
	if err != nil {
		t.Fatal(err)
	}
	attrs := pd.ResourceProfiles().At(0).Resource().Attributes()
	main := w.Profiles[0].Profile.Mapping[0]
	exe, _ := os.Executable()
	if v, _ := attrs.Get(AttrExecutableName); v.Str() != filepath.Base(main.File) || v.Str() != filepath.Base(exe) {
		t.Errorf("%s = %q, want %q (the test binary)", AttrExecutableName, v.Str(), filepath.Base(exe))
	}
	if main.BuildID != "" {
		if v, _ := attrs.Get(buildIDAttribute(main.BuildID)); v.Str() != main.BuildID {
			t.Errorf("build ID %q, want %q", v.Str(), main.BuildID)
		}
	}
	if buildIDAttribute("0e5c0d4f8a3b") != AttrBuildIDGNU || buildIDAttribute("foh3mEXu7BLZjsN9pOwG/kATcXlYVCDEFouRMQed_") != AttrBuildIDGo {
		t.Error("build ID kinds")
	}
}

func TestConvertRefusesInvalid(t *testing.T) {
	w := liveWindow(t)
	bad := w.Profiles[0].Profile.Copy()
	bad.Sample[0].Value = bad.Sample[0].Value[:1]
	w.Profiles = []forward.Profile{{Kind: "cpu", Profile: bad}}
	if _, err := Convert(w); err == nil {
		t.Fatal("took a sample with fewer values than sample types")
	}
}

// BenchmarkConvertHostWindow converts the stored host window and reports
// its size on the wire: the OTLP protobuf request, and gzipped.
func BenchmarkConvertHostWindow(b *testing.B) {
	w := hostWindow(b)
	var raw []byte
	for b.Loop() {
		pd, err := Convert(w)
		if err != nil {
			b.Fatal(err)
		}
		raw, err = pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	pprofSize := 0
	for _, p := range w.Profiles {
		var pb bytes.Buffer
		p.Profile.Write(&pb) // gzipped pprof, as stored
		pprofSize += pb.Len()
	}
	b.ReportMetric(float64(len(raw)), "otlp-bytes")
	b.ReportMetric(float64(gz.Len()), "otlp-gzip-bytes")
	b.ReportMetric(float64(pprofSize), "pprof-gzip-bytes")
}
