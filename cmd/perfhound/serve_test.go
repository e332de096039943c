package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/webauth"
	"github.com/perfhound/perfhound/analyzer/observation"
)

const serveFixture = "../../fixtures/observations/contention-go-mutex"

// syncBuffer is a bytes.Buffer that the server's goroutines and the test
// can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func httpGet(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// startServe runs serve in the background until the test ends, and returns
// its address and token.
func startServe(t *testing.T, dir string, opts serveOptions, stderr io.Writer) (addr, token string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type started struct{ addr, token string }
	startc := make(chan started, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, dir, opts, stderr, func(addr, token string) { startc <- started{addr, token} })
	}()
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop in 10s after cancel")
		}
	}
	select {
	case s := <-startc:
		t.Cleanup(func() {
			if ctx.Err() == nil {
				stop()
			}
		})
		return s.addr, s.token, stop
	case err := <-done:
		t.Fatalf("serve returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start in 10s")
	}
	return
}

// isolateHome keeps pprof away from the real HOME, where it must write
// nothing anyway.
func isolateHome(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv(webauth.TokenEnv, "")
}

func TestServe(t *testing.T) {
	isolateHome(t)
	var stderr syncBuffer
	addr, token, stop := startServe(t, serveFixture, serveOptions{listen: "127.0.0.1:0"}, &stderr)
	base := "http://" + addr
	port := addr[strings.LastIndex(addr, ":"):]

	want := "serving 9 profiles of /tmp/tmp.XF8Le6kNb6/workloads -mode mutex -pprof 127.0.0.1:16060 -duration 8s at " + base + "/?token=" + token + " (Ctrl-C to stop)\n"
	if got := stderr.String(); got != want {
		t.Errorf("stderr:\n%q\nwant\n%q", got, want)
	}
	if len(token) < 26 {
		t.Errorf("token %q: fewer than 128 bits", token)
	}

	// Without the token: nothing of the observation.
	for _, path := range []string{"/", "/profile/6/top", "/profile/6/download", "/profile/6/source?f=main"} {
		code, body := httpGet(t, base+path, "")
		if code != http.StatusUnauthorized || strings.Contains(body, "profile/6") || strings.Contains(body, "main.contend") || strings.Contains(body, "workloads") {
			t.Errorf("GET %s without the token: %d\n%s", path, code, body)
		}
	}
	// A wrong token of the same length.
	wrong := []byte(token)
	wrong[0] ^= 1
	if code, body := httpGet(t, base+"/?token="+string(wrong), ""); code != http.StatusUnauthorized || strings.Contains(body, "profile/6") {
		t.Errorf("GET with a wrong token: %d", code)
	}

	// A browser opens the printed URL: a cookie, and the index without the
	// token in the address bar; then every page.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(base + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="profile/6/flamegraph"`) || resp.Request.URL.String() != base+"/" {
		t.Errorf("opening the printed URL: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	resp, err = browser.Get(base + "/profile/6/top")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "main.contend.func1") {
		t.Errorf("GET /profile/6/top with the cookie: %d, or it lacks main.contend.func1", resp.StatusCode)
	}

	// A script sends the token in a header.
	bearer := func(url, host string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := bearer(base+"/profile/6/top", ""); code != http.StatusOK {
		t.Errorf("GET with Authorization: Bearer: %d, want 200", code)
	}
	if code := bearer(base+"/profile/6/top", "localhost"+port); code != http.StatusOK {
		t.Errorf("GET with Host localhost: %d, want 200", code)
	}
	// A page whose domain was rebound to 127.0.0.1 sends its own name.
	if code := bearer(base+"/", "evil.example"); code != http.StatusForbidden {
		t.Errorf("GET with Host evil.example: %d, want 403", code)
	}

	stop()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("still listening on %s after shutdown", addr)
	}
}

// TestServeSource serves a crafted observation: its mutex profile names a
// file only its owner can read, outside the source root, and the real
// source of its main.contend.func1 under it.
func TestServeSource(t *testing.T) {
	isolateHome(t)
	o, err := observation.Load(serveFixture)
	if err != nil {
		t.Fatal(err)
	}
	mainGo, err := filepath.Abs("../../fixtures/workloads/main.go")
	if err != nil {
		t.Fatal(err)
	}
	secret := writeFile(t, filepath.Join(t.TempDir(), "shadow"), []byte(strings.Repeat("SECRET-LINE\n", 600)))
	os.Chmod(secret, 0o600)
	var mutex int
	for i, p := range o.Profiles {
		if p.Kind == observation.KindMutex && p.Source == "pprof" {
			mutex = i
		}
	}
	for _, f := range o.Profiles[mutex].Profile.Function {
		switch f.Filename {
		case "/work/main/fixtures/workloads/main.go":
			f.Filename = mainGo
		case "/usr/local/go/src/sync/mutex.go":
			f.Filename = secret
		}
	}
	dir := filepath.Join(t.TempDir(), "obs")
	if err := observation.Save(o, dir); err != nil {
		t.Fatal(err)
	}
	source := func(opts serveOptions, fn string) string {
		addr, token, stop := startServe(t, dir, opts, io.Discard)
		defer stop()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/profile/%d/source?f=%s", addr, mutex, fn), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("source view of %s: %d\n%s", fn, resp.StatusCode, b)
		}
		return string(b)
	}
	const line = "for time.Now().Before(deadline) {"
	withRoot := serveOptions{listen: "127.0.0.1:0", sourceRoots: []string{filepath.Dir(filepath.Dir(mainGo))}}
	if body := source(withRoot, "main%5C.contend"); !strings.Contains(body, line) {
		t.Errorf("source view with --source-root lacks the line %q of %s", line, mainGo)
	}
	if body := source(serveOptions{listen: "127.0.0.1:0"}, "main%5C.contend"); strings.Contains(body, line) || !strings.Contains(body, "main.contend.func1") {
		t.Errorf("source view without --source-root: the text of %s, or not the function", mainGo)
	}
	for _, opts := range []serveOptions{withRoot, {listen: "127.0.0.1:0"}} {
		if body := source(opts, "Mutex"); strings.Contains(body, "SECRET-LINE") {
			t.Errorf("source view with roots %v shows %s", opts.sourceRoots, secret)
		}
	}
}

func TestServeUnixSocket(t *testing.T) {
	isolateHome(t)
	sock := filepath.Join(t.TempDir(), "serve.sock")
	var stderr syncBuffer
	_, token, stop := startServe(t, serveFixture, serveOptions{listen: "unix:" + sock}, &stderr)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v, want mode 0600", fi.Mode(), err)
	}
	if want := "on unix:" + sock + ": ssh -L 8080:" + sock + " HOST, then open http://127.0.0.1:8080/?token=" + token; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for auth, want := range map[string]int{"": http.StatusUnauthorized, "Bearer " + token: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost/profile/6/top", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET over the socket with %q: %d, want %d", auth, resp.StatusCode, want)
		}
	}
	stop()
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("socket %s left behind", sock)
	}
}

func TestServeGivenToken(t *testing.T) {
	isolateHome(t)
	const token = "0123456789abcdef0123456789abcdef"
	file := writeFile(t, filepath.Join(t.TempDir(), "token"), []byte(token+"\n"))
	os.Chmod(file, 0o600)
	for _, c := range []struct {
		opts serveOptions
		env  string
		from string
	}{
		{serveOptions{listen: "127.0.0.1:0", tokenFile: file}, "", file},
		{serveOptions{listen: "127.0.0.1:0"}, token, "$" + webauth.TokenEnv},
	} {
		t.Setenv(webauth.TokenEnv, c.env)
		var stderr syncBuffer
		addr, got, stop := startServe(t, serveFixture, c.opts, &stderr)
		if got != token {
			t.Errorf("token %q, want the one from %s", got, c.from)
		}
		// The user's token stays out of the terminal and the logs.
		if out := stderr.String(); strings.Contains(out, token) || !strings.Contains(out, "with the token from "+c.from) {
			t.Errorf("stderr: %q", out)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET with the token from %s: %d", c.from, resp.StatusCode)
		}
		stop()
	}
}

func TestServeBadInput(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	if c, _, err := root.Find([]string{"serve"}); err != nil || c.Name() != "serve" {
		t.Fatal("serve is not a command yet: add root.AddCommand(newServe()) in newRoot (run.go)")
	}
	isolateHome(t)
	notObs := t.TempDir()
	openToken := writeFile(t, filepath.Join(t.TempDir(), "token"), []byte("0123456789abcdef0123\n"))
	os.Chmod(openToken, 0o644)
	shortToken := writeFile(t, filepath.Join(t.TempDir(), "token"), []byte("0123\n"))
	os.Chmod(shortToken, 0o600)
	file := writeFile(t, filepath.Join(t.TempDir(), "cpu.pb.gz"), []byte("x"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "/nonexistent"}, "/nonexistent: no such directory"},
		{[]string{"serve", notObs}, notObs + ": not a perfhound observation"},
		{[]string{"serve", file}, file + " is a file"},
		{[]string{"serve"}, "Run 'perfhound --help'"},
		{[]string{"serve", "--listen", "127.0.0.1:bogus", serveFixture}, "listening"},
		{[]string{"serve", "--listen", "unix:", serveFixture}, "needs a path"},
		{[]string{"serve", "--source-root", "/nonexistent", serveFixture}, "source root: lstat /nonexistent"},
		{[]string{"serve", "--token-file", "/nonexistent", serveFixture}, "reading the token: open /nonexistent"},
		{[]string{"serve", "--token-file", openToken, serveFixture}, "readable by other users"},
		{[]string{"serve", "--token-file", shortToken, serveFixture}, "bad token"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != exitBadInput || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: code %d (want %d), stderr %q (want %q in it)", c.args, code, exitBadInput, errb.String(), c.want)
		}
	}
}
