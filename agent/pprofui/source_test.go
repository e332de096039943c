package pprofui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// secretFile writes a file of 600 lines that only its owner may read, as
// /etc/shadow, outside any source root, and returns its path.
func secretFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= 600; i++ {
		fmt.Fprintf(&b, "SECRET-LINE-%d\n", i)
	}
	path := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rename makes every function of the mutex profile from file from name
// file to instead, as a crafted observation would, and returns the
// profile's index.
func rename(t *testing.T, o *observation.Observation, from, to string) int {
	t.Helper()
	i := find(t, o, observation.KindMutex, "pprof")
	n := 0
	for _, f := range o.Profiles[i].Profile.Function {
		if f.Filename == from {
			f.Filename = to
			n++
		}
	}
	if n == 0 {
		t.Fatalf("fixture's mutex profile names no function in %s", from)
	}
	return i
}

const fixtureMain = "/work/main/fixtures/workloads/main.go"

// sourceView gets profile i's Source view of main.contend and fails the
// test unless pprof rendered it (of the function, with or without text).
func sourceView(t *testing.T, srv string, i int) string {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second} // a FIFO must not hang it
	resp, err := client.Get(fmt.Sprintf("%s/profile/%d/source?f=main%%5C.contend", srv, i))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "main.contend.func1") {
		t.Fatalf("source view: %d\n%s", resp.StatusCode, b)
	}
	return string(b)
}

// workloadsMain is the real source of the fixture's main.contend.func1, in
// this checkout, and a line of it that the Source view shows.
func workloadsMain(t *testing.T) (path, line string) {
	t.Helper()
	path, err := filepath.Abs("../../fixtures/workloads/main.go")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	line = "for time.Now().Before(deadline) {"
	if err != nil || !strings.Contains(string(b), line) {
		t.Fatalf("%s lacks %q: %v", path, line, err)
	}
	return path, line
}

func TestSourceUnderRoot(t *testing.T) {
	home := isolate(t)
	main, line := workloadsMain(t)
	fixtures := filepath.Dir(filepath.Dir(main))
	for _, c := range []struct {
		name, file string
		roots      []string
		shown      bool
	}{
		// The profile names the file where this checkout has it.
		{"absolute", main, []string{fixtures}, true},
		{"root is the file's directory", main, []string{filepath.Dir(main)}, true},
		{"second root", main, []string{t.TempDir(), fixtures}, true},
		// A -trimpath build's relative name, found under a root.
		{"relative", "workloads/main.go", []string{fixtures}, true},
		{"no root", main, nil, false},
		{"another root", main, []string{t.TempDir()}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := load(t)
			i := rename(t, o, fixtureMain, c.file)
			srv := serve(t, o, c.roots...)
			body := sourceView(t, srv.URL, i)
			if got := strings.Contains(body, line); got != c.shown {
				t.Errorf("source view shows %q: %v, want %v", line, got, c.shown)
			}
		})
	}
	// A root given through a symlink is the directory it points to.
	link := filepath.Join(t.TempDir(), "fixtures")
	if err := os.Symlink(fixtures, link); err != nil {
		t.Fatal(err)
	}
	o := load(t)
	i := rename(t, o, fixtureMain, main)
	srv := serve(t, o, link)
	if body := sourceView(t, srv.URL, i); !strings.Contains(body, line) {
		t.Errorf("source view under a symlinked root lacks %q", line)
	}
	wroteNothing(t, home)
}

func TestSourceOutsideRoots(t *testing.T) {
	isolate(t)
	secret := secretFile(t)
	root := filepath.Dir(secretFile(t)) // another directory, beside it
	rel, err := filepath.Rel(root, secret)
	if err != nil || !strings.HasPrefix(rel, "../") {
		t.Fatalf("secret %s is not beside root %s", secret, root)
	}
	// Symlinks inside the root: to the file, and to its directory.
	if err := os.Symlink(secret, filepath.Join(root, "evil.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(root, "evildir")); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	fromCwd, _ := filepath.Rel(cwd, secret)
	for _, name := range []string{
		secret,
		"/" + secret,
		"/./" + secret,
		secret[1:], // pprof looked for relative names in every parent of its source path
		strings.Repeat("../", 40) + secret[1:],
		"/proc/self/cwd/" + fromCwd,
		"/proc/self/root" + secret,
		root + "/" + rel, // .. out of the root
		filepath.Join(root, "evil.go"),
		filepath.Join(root, "evildir", filepath.Base(secret)),
		"evil.go", // relative, under the root
		"./../" + filepath.Base(filepath.Dir(secret)) + "/" + filepath.Base(secret),
	} {
		for _, roots := range [][]string{nil, {root}, {"/proc/self/cwd"}} {
			t.Run(fmt.Sprintf("%s in %v", name, roots), func(t *testing.T) {
				o := load(t)
				// Every function, inlined or not, has the name: pprof opens
				// inlined calls' files by their raw names.
				i := find(t, o, observation.KindMutex, "pprof")
				for _, f := range o.Profiles[i].Profile.Function {
					f.Filename = name
				}
				srv := serve(t, o, roots...)
				if body := sourceView(t, srv.URL, i); strings.Contains(body, "SECRET-LINE") {
					t.Errorf("the source view shows %s, outside every source root", secret)
				}
			})
		}
	}
}

func TestSourceFIFO(t *testing.T) {
	isolate(t)
	root := t.TempDir()
	fifo := filepath.Join(root, "main.go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	o := load(t)
	i := rename(t, o, fixtureMain, fifo)
	srv := serve(t, o, root)
	sourceView(t, srv.URL, i) // answers, with no text
}

func TestOneSetOfRootsPerProcess(t *testing.T) {
	isolate(t)
	o := load(t)
	a, b := t.TempDir(), t.TempDir()
	srv := serve(t, o, a)
	if _, err := New(o, Options{SourceRoots: []string{b}}); !errors.Is(err, ErrOtherRoots) {
		t.Errorf("a second server with other roots: %v, want ErrOtherRoots", err)
	}
	// The same roots share the snapshot.
	srv2 := serve(t, o, a)
	for _, s := range []string{srv.URL, srv2.URL} {
		sourceView(t, s, find(t, o, observation.KindMutex, "pprof"))
	}
	if _, err := New(o, Options{SourceRoots: []string{filepath.Join(a, "none")}}); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("a missing root: %v", err)
	}
}

func TestSafeName(t *testing.T) {
	for name, want := range map[string]string{
		"/usr/local/go/src/sync/mutex.go": "/usr/local/go/src/sync/mutex.go",
		"github.com/x/y/main.go":          "github.com/x/y/main.go",
		"":                                "",
		"/proc/self/cwd/main.go":          "/proc/self/cwd/main.go",
		"//etc/shadow":                    "/etc/shadow",
		"../src/x.c":                      "src/x.c",
		"/proc/self/cwd/../../etc/shadow": "etc/shadow",
		"a/../../../etc/shadow":           "etc/shadow",
		"..":                              "",
		"x\x00y":                          "",
	} {
		if got := safeName(name); got != want {
			t.Errorf("safeName(%q) = %q, want %q", name, got, want)
		}
		if !staysInSnapshot(safeName(name)) {
			t.Errorf("safeName(%q) leaves the snapshot", name)
		}
	}
}

func TestClosed(t *testing.T) {
	isolate(t)
	o := load(t)
	h, err := New(o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	i := find(t, o, observation.KindMutex, "pprof")
	sourceView(t, srv.URL, i)
	dir := run.state.dir
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s: %v", dir, err)
	}
	if code, _, _ := get(t, fmt.Sprintf("%s/profile/%d/source?f=main", srv.URL, i)); code != http.StatusServiceUnavailable {
		t.Errorf("source view after Close: %d, want 503", code)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// FuzzSafeName: whatever a profile names, what pprof is given to open
// stays inside the snapshot.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"/etc/shadow", "//etc/shadow", "../../x", "/proc/self/cwd/../../etc/shadow", "a/../../b", "", ".", "..", "/", "./../x", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		safe := safeName(name)
		if !staysInSnapshot(safe) {
			t.Fatalf("safeName(%q) = %q leaves the snapshot", name, safe)
		}
		for _, o := range opened(safe) {
			if o != "" && !filepath.IsLocal(o) {
				t.Fatalf("pprof would open %q for safeName(%q) = %q", o, name, safe)
			}
		}
	})
}
