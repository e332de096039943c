package observation

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// What fuzzLayout puts at the path of a profile entry, chosen by a byte.
const (
	asPlain       = iota // the profile bytes as they are
	asGzip               // gzipped
	asTruncated          // gzipped, cut in half
	asLinkToFirst        // a symlink to the first entry's file
	asDir                // a directory
	asMissing            // nothing
	asSelfLink           // a symlink to itself
	asNestedGzip         // gzipped twice
	asLinkUp             // a symlink to the observation's directory
	layouts
)

// fuzzLayout writes index as dir's observation.json and, at each local
// path the index's profile entries name (at most 16), what layout says.
func fuzzLayout(t *testing.T, dir string, index, prof, layout []byte) {
	os.WriteFile(filepath.Join(dir, indexFile), index, 0o644)
	var ix struct {
		Profiles []struct {
			File string `json:"file"`
		} `json:"profiles"`
	}
	json.Unmarshal(index, &ix)
	first := ""
	for i, e := range ix.Profiles {
		if i >= 16 || len(layout) == 0 {
			break
		}
		rel := filepath.FromSlash(e.File)
		if !filepath.IsLocal(rel) || len(rel) > 200 {
			continue
		}
		path := filepath.Join(dir, rel)
		if first == "" {
			first = path
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		switch layout[i%len(layout)] % layouts {
		case asPlain:
			os.WriteFile(path, prof, 0o644)
		case asGzip:
			os.WriteFile(path, testprof.Gzip(prof), 0o644)
		case asTruncated:
			z := testprof.Gzip(prof)
			os.WriteFile(path, z[:len(z)/2], 0o644)
		case asLinkToFirst:
			os.Symlink(first, path)
		case asDir:
			os.Mkdir(path, 0o755)
		case asSelfLink:
			os.Symlink(filepath.Base(path), path)
		case asNestedGzip:
			os.WriteFile(path, testprof.Gzip(testprof.Gzip(prof)), 0o644)
		case asLinkUp:
			os.Symlink(dir, path)
		}
	}
}

// FuzzLoadObservationDir loads observation directories made of a fuzzed
// index and, at the paths it names, fuzzed profiles in odd forms
// (gzipped, truncated, gzipped twice, symlinks to another entry, to
// themselves, to the directory, directories, missing), under a small
// budget: LoadWith must return in time, never panic, name the directory's
// file in every error, and give back every charge of a failed load.
func FuzzLoadObservationDir(f *testing.F) {
	seedDir := filepath.Join(f.TempDir(), "seed")
	if err := Save(sampleObservation(), seedDir); err != nil {
		f.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(seedDir, indexFile))
	if err != nil {
		f.Fatal(err)
	}
	var prof bytes.Buffer
	sampleProfile("main.spin", 90).WriteUncompressed(&prof)
	f.Add(index, prof.Bytes(), []byte{asGzip})
	f.Add(index, prof.Bytes(), []byte{asPlain, asLinkToFirst, asTruncated})
	f.Add(index, prof.Bytes(), []byte{asNestedGzip, asDir, asSelfLink, asMissing, asLinkUp})
	// 5 KB gzipped, 2 MB inflated, 48 MB parsed: over the budget.
	f.Add(index, testprof.Gzip(testprof.Deep(2_000, 1_000)), []byte{asPlain})
	dup := bytes.Replace(index, []byte("002-pprof-heap"), []byte("000-ebpf-cpu"), 1)
	f.Add(dup, prof.Bytes(), []byte{asGzip})
	f.Add([]byte(`{"format":"perfhound.observation","version":1,"profiles":[{"kind":"cpu","file":"p"},{"kind":"cpu","file":"./p"}]}`), prof.Bytes(), []byte{asPlain})
	f.Add([]byte(`{"format":"perfhound.observation","version":1,"profiles":[{"kind":"cpu","file":"a/b/c"}]}`), []byte{0x1f, 0x8b, 8, 0}, []byte{asPlain})

	f.Fuzz(func(t *testing.T, index, prof, layout []byte) {
		if len(index)+len(prof)+len(layout) > 64<<10 { // kept small: gzip makes them large
			return
		}
		dir := filepath.Join(t.TempDir(), "obs")
		os.Mkdir(dir, 0o755)
		fuzzLayout(t, dir, index, prof, layout)
		b := profdecode.NewBudget(8 << 20)
		type result struct {
			o   *Observation
			err error
		}
		done := make(chan result, 1)
		go func() {
			o, err := LoadWith(dir, LoadOptions{Budget: b, Limits: profdecode.Limits{MaxBytes: 1 << 20}})
			done <- result{o, err}
		}()
		select {
		case r := <-done:
			err := r.err
			if err == nil {
				for i, p := range r.o.Profiles {
					if p.Profile == nil {
						t.Fatalf("profile %d loaded as nil", i)
					}
				}
				if b.Used() > b.Max() {
					t.Fatalf("budget used %d of %d", b.Used(), b.Max())
				}
				return
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error names no file of %s: %v", dir, err)
			}
			if b.Used() != 0 {
				t.Fatalf("a failed load left %d bytes charged: %v", b.Used(), err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("LoadWith did not return in 30s")
		}
	})
}
