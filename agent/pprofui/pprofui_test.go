package pprofui

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

const fixture = "../../fixtures/observations/contention-go-mutex"

// isolate points HOME and the config directory at an empty directory and
// returns it, so a test can check that serving wrote nothing there.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("PPROF_TMPDIR", "")
	return home
}

func serve(t *testing.T, o *observation.Observation, roots ...string) *httptest.Server {
	t.Helper()
	h, err := New(o, Options{ErrorLog: io.Discard, SourceRoots: roots})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func load(t *testing.T) *observation.Observation {
	t.Helper()
	o, err := observation.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// find returns the index of the profile of that kind and source.
func find(t *testing.T, o *observation.Observation, kind observation.ProfileKind, source observation.ProfileSource) int {
	t.Helper()
	for i, p := range o.Profiles {
		if p.Kind == kind && p.Source == source {
			return i
		}
	}
	t.Fatalf("fixture has no %s profile from %s", kind, source)
	return -1
}

// hasFunction fails the test unless the profile names fn, so that a
// changed fixture fails here and not as a puzzling missing string.
func hasFunction(t *testing.T, p *profile.Profile, fn string) {
	t.Helper()
	for _, f := range p.Function {
		if f.Name == fn {
			return
		}
	}
	t.Fatalf("fixture profile has no function %s", fn)
}

func get(t *testing.T, url string) (int, string, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp
}

func TestIndexListsEveryProfile(t *testing.T) {
	isolate(t)
	o := load(t)
	srv := serve(t, o)
	code, body, resp := get(t, srv.URL+"/")
	if code != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"workloads -mode mutex", o.Meta.Host, "(5.045s)"} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	for i, p := range o.Profiles {
		row := fmt.Sprintf("<td>%d</td><td>%s</td><td>%s</td>", i, p.Kind, p.Source)
		if !strings.Contains(body, row) {
			t.Errorf("index lacks the row of profile %d: %s", i, row)
		}
		if !strings.Contains(body, fmt.Sprintf(`href="profile/%d/flamegraph"`, i)) {
			t.Errorf("index lacks a link to profile %d", i)
		}
		for _, st := range p.Profile.SampleType {
			if !strings.Contains(body, st.Type+"/"+st.Unit) {
				t.Errorf("index lacks sample type %s/%s of profile %d", st.Type, st.Unit, i)
			}
		}
	}
	if !strings.Contains(body, "mode=delta url=http://127.0.0.1:16060") {
		t.Errorf("index lacks the labels of the pprof profiles")
	}
}

func TestViews(t *testing.T) {
	home := isolate(t)
	o := load(t)
	var before bytes.Buffer
	if err := o.Profiles[0].Profile.Write(&before); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, o)
	_, haveDot := exec.LookPath("dot")

	cases := []struct {
		kind   observation.ProfileKind
		source observation.ProfileSource
		fn     string
	}{
		{observation.KindCPU, "ebpf", "main.contend.func1"},
		{observation.KindMutex, "pprof", "sync.(*Mutex).Unlock"},
	}
	for _, c := range cases {
		i := find(t, o, c.kind, c.source)
		hasFunction(t, o.Profiles[i].Profile, c.fn)
		base := fmt.Sprintf("%s/profile/%d", srv.URL, i)
		t.Run(string(c.source)+"-"+string(c.kind), func(t *testing.T) {
			// / redirects (relatively) to the flame graph, and the
			// client lands on it under the prefix.
			code, body, resp := get(t, base+"/")
			if code != http.StatusOK || resp.Request.URL.Path != fmt.Sprintf("/profile/%d/flamegraph", i) {
				t.Fatalf("GET %s/: %d at %s", base, code, resp.Request.URL)
			}
			if !strings.Contains(body, c.fn) {
				t.Errorf("flame graph lacks %s", c.fn)
			}
			// Without the slash, pprof's relative links would leave
			// the prefix: the mux redirects.
			if code, _, resp := get(t, base); code != http.StatusOK || resp.Request.URL.Path != fmt.Sprintf("/profile/%d/flamegraph", i) {
				t.Errorf("GET %s: %d at %s", base, code, resp.Request.URL)
			}
			for _, view := range []string{"/top", "/flamegraph", "/peek?f=" + quoteMeta(c.fn), "/source?f=" + quoteMeta(c.fn)} {
				code, body, _ := get(t, base+view)
				if code != http.StatusOK {
					t.Errorf("GET %s: %d\n%s", view, code, body)
					continue
				}
				if !strings.Contains(body, c.fn) {
					t.Errorf("GET %s lacks %s", view, c.fn)
				}
				// pprof's links are relative, so they stay under the prefix.
				if view == "/top" && !strings.Contains(body, `href="./flamegraph"`) {
					t.Errorf("GET %s: pprof's links are not relative any more; mounting under a prefix needs rewriting", view)
				}
			}
			code, body, _ = get(t, base+"/graph")
			switch {
			case haveDot == nil && (code != http.StatusOK || !strings.Contains(body, c.fn)):
				t.Errorf("GET /graph: %d, or it lacks %s", code, c.fn)
			case haveDot != nil && code != http.StatusNotImplemented:
				t.Errorf("GET /graph without dot: %d, want 501", code)
			}
			code, body, _ = get(t, base+"/download")
			if code != http.StatusOK {
				t.Fatalf("GET /download: %d", code)
			}
			p, err := profile.Parse(strings.NewReader(body))
			if err != nil {
				t.Fatalf("downloaded profile: %v", err)
			}
			if len(p.Sample) != len(o.Profiles[i].Profile.Sample) {
				t.Errorf("downloaded profile: %d samples, want %d", len(p.Sample), len(o.Profiles[i].Profile.Sample))
			}
		})
	}

	var after bytes.Buffer
	if err := o.Profiles[0].Profile.Write(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Errorf("serving modified the observation's profile")
	}
	// pprof would save fetched profiles to ~/pprof and settings to
	// ~/.config/pprof: nothing of the kind happened.
	wroteNothing(t, home)
}

func quoteMeta(s string) string {
	r := strings.NewReplacer("(", `\(`, ")", `\)`, "*", `\*`, ".", `\.`)
	return strings.ReplaceAll(r.Replace(s), `\`, "%5C")
}

func TestSampleIndex(t *testing.T) {
	isolate(t)
	o := load(t)
	srv := serve(t, o)
	heap := find(t, o, observation.KindHeap, "pprof")
	base := fmt.Sprintf("%s/profile/%d/top", srv.URL, heap)
	// The default is the profile's last sample type, inuse_space.
	code, body, _ := get(t, base)
	if code != http.StatusOK || !strings.Contains(body, "Type: inuse_space") {
		t.Errorf("GET top: %d, or not of inuse_space", code)
	}
	for _, st := range o.Profiles[heap].Profile.SampleType {
		code, body, _ := get(t, base+"?si="+st.Type)
		if code != http.StatusOK || !strings.Contains(body, "Type: "+st.Type) {
			t.Errorf("GET top?si=%s: %d, or not of that type", st.Type, code)
		}
	}
	if code, _, _ := get(t, base+"?si=bogus"); code != http.StatusBadRequest {
		t.Errorf("GET top?si=bogus: %d, want 400", code)
	}
}

func TestEveryProfileConcurrently(t *testing.T) {
	isolate(t)
	o := load(t)
	srv := serve(t, o)
	var wg sync.WaitGroup
	for range 2 {
		for i := range o.Profiles {
			wg.Go(func() {
				resp, err := http.Get(fmt.Sprintf("%s/profile/%d/top", srv.URL, i))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("profile %d (%s %s): top: %d", i, o.Profiles[i].Source, o.Profiles[i].Kind, resp.StatusCode)
				}
			})
		}
	}
	wg.Wait()
}

func TestNotFound(t *testing.T) {
	isolate(t)
	o := load(t)
	srv := serve(t, o)
	n := len(o.Profiles)
	for _, path := range []string{
		fmt.Sprintf("/profile/%d/", n),
		fmt.Sprintf("/profile/%d/top", n),
		"/profile/-1/top",
		"/profile/01/top",
		"/profile/x/",
		"/profile/0/nope",
		"/profile/0/debug/pprof/",
		"/nope",
	} {
		if code, _, _ := get(t, srv.URL+path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
}

func TestConfigWritesNeedTheirMethod(t *testing.T) {
	home := isolate(t)
	srv := serve(t, load(t))
	if code, _, _ := get(t, srv.URL+"/profile/0/saveconfig?config=x"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET saveconfig: %d, want 405", code)
	}
	// A cross-origin POST, as another site's page would send.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/profile/0/saveconfig?config=x", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST saveconfig: %d, want 403", resp.StatusCode)
	}
	// The UI's own POST saves, into this run's settings, not the home
	// directory: the config menu lists it, and deleting it works.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/profile/0/saveconfig?config=mine&si=samples", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST saveconfig: %d, want 200", resp.StatusCode)
	}
	if _, body, _ := get(t, srv.URL+"/profile/0/top"); !strings.Contains(body, "config=mine") {
		t.Errorf("the config menu lacks the saved config")
	}
	req, _ = http.NewRequest(http.MethodDelete, srv.URL+"/profile/0/deleteconfig?config=mine", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin DELETE deleteconfig: %d, want 200", resp.StatusCode)
	}
	if _, body, _ := get(t, srv.URL+"/profile/0/top"); strings.Contains(body, "config=mine") {
		t.Errorf("the config menu still lists the deleted config")
	}
	wroteNothing(t, home)
}

// wroteNothing fails the test if anything was written under home.
func wroteNothing(t *testing.T, home string) {
	t.Helper()
	filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if path != home {
			t.Errorf("serving wrote %s", path)
		}
		return err
	})
}

func TestProfileWithoutData(t *testing.T) {
	isolate(t)
	o := load(t)
	o.Profiles[1].Profile = nil
	srv := serve(t, o)
	code, body, _ := get(t, srv.URL+"/profile/1/top")
	if code != http.StatusInternalServerError || !strings.Contains(body, "has no data") {
		t.Errorf("GET a profile without data: %d %q", code, body)
	}
	if _, body, _ := get(t, srv.URL+"/"); !strings.Contains(body, "no data") {
		t.Errorf("index does not say profile 1 has no data")
	}
	if code, _, _ := get(t, srv.URL+"/profile/0/top"); code != http.StatusOK {
		t.Errorf("GET another profile: %d", code)
	}
}
