package webauth

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "profile data: main.contend.func1"

// guarded serves secret behind a Guard with token (empty: a random one).
func guarded(t *testing.T, token string) (*httptest.Server, *Guard) {
	t.Helper()
	g, err := New(Options{Token: token, LoopbackHosts: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, secret+" at "+r.URL.RequestURI())
	})))
	t.Cleanup(srv.Close)
	return srv, g
}

// do sends req with client (nil: one that does not follow redirects).
func do(t *testing.T, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func get(t *testing.T, u string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, nil, req)
}

func TestNoTokenNoData(t *testing.T) {
	srv, _ := guarded(t, "")
	for _, path := range []string{"/", "/profile/0/top", "/profile/0/source?f=.", "/?tok=x"} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, secret) {
			t.Errorf("GET %s without the token: %d %q", path, resp.StatusCode, body)
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate", path)
		}
	}
}

func TestTokenURLSetsCookieAndRedirects(t *testing.T) {
	srv, g := guarded(t, "")
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	resp, body := get(t, srv.URL+"/profile/3/top?si=alloc_space&token="+url.QueryEscape(g.Token()))
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(body, secret) {
		t.Fatalf("GET with the token: %d %q, want a redirect", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/profile/3/top?si=alloc_space" {
		t.Errorf("redirect to %q, want the same URL without the token", loc)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	c := cookies[0]
	if c.Name != "perfhound-token-"+port || c.Value != g.Token() || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie %+v: want perfhound-token-%s, the token, HttpOnly, SameSite=Strict, Path=/", c, port)
	}

	// A browser: opens the printed URL, lands on / with the cookie set,
	// and keeps it for the next pages.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	req, _ := http.NewRequest(http.MethodGet, g.URL(srv.URL+"/"), nil)
	resp, body = do(t, browser, req)
	if resp.StatusCode != http.StatusOK || body != secret+" at /" || resp.Request.URL.RawQuery != "" {
		t.Fatalf("opening the printed URL: %d %q at %s", resp.StatusCode, body, resp.Request.URL)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/profile/1/flamegraph", nil)
	if resp, body = do(t, browser, req); resp.StatusCode != http.StatusOK || !strings.Contains(body, secret) {
		t.Errorf("next page with the cookie: %d %q", resp.StatusCode, body)
	}

	// "//host" must not become a redirect to another host.
	resp, _ = get(t, srv.URL+"//evil.example/x?token="+url.QueryEscape(g.Token()))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "//") {
		t.Errorf("redirect to %q leaves the server", loc)
	}
}

func TestCookieAndBearer(t *testing.T) {
	srv, g := guarded(t, "")
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, h := range [][]string{
		{"Cookie", "perfhound-token-" + port + "=" + g.Token()},
		{"Authorization", "Bearer " + g.Token()},
		{"Authorization", "bearer " + g.Token()},
	} {
		resp, body := get(t, srv.URL+"/profile/0/top", h...)
		if resp.StatusCode != http.StatusOK || body != secret+" at /profile/0/top" {
			t.Errorf("%s: %s: %d %q", h[0], h[1], resp.StatusCode, body)
		}
	}
	// Another port's cookie is another server's.
	resp, _ := get(t, srv.URL+"/", "Cookie", "perfhound-token-1="+g.Token())
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another port's cookie: %d, want 401", resp.StatusCode)
	}
}

func TestWrongTokenOfEqualLength(t *testing.T) {
	srv, g := guarded(t, "")
	good := g.Token()
	wrong := []byte(good)
	wrong[len(wrong)-1] ^= 1 // one bit off, same length
	bad := string(wrong)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	cases := []struct {
		url    string
		header []string
	}{
		{srv.URL + "/?token=" + url.QueryEscape(bad), nil},
		{srv.URL + "/", []string{"Cookie", "perfhound-token-" + port + "=" + bad}},
		{srv.URL + "/", []string{"Authorization", "Bearer " + bad}},
		{srv.URL + "/", []string{"Authorization", "Basic " + good}},
		{srv.URL + "/?token=", nil},
		// A wrong token in the URL is refused even beside a good cookie.
		{srv.URL + "/?token=" + url.QueryEscape(bad), []string{"Cookie", "perfhound-token-" + port + "=" + good}},
	}
	for _, c := range cases {
		resp, body := get(t, c.url, c.header...)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, secret) || len(resp.Cookies()) != 0 {
			t.Errorf("%s %q: %d %q, cookies %v", c.url, c.header, resp.StatusCode, body, resp.Cookies())
		}
	}
}

func TestLoopbackHosts(t *testing.T) {
	srv, g := guarded(t, "")
	for host, want := range map[string]int{
		"127.0.0.1:8080":         http.StatusOK,
		"[::1]:8080":             http.StatusOK,
		"localhost:8080":         http.StatusOK,
		"LocalHost":              http.StatusOK,
		"127.1.2.3":              http.StatusOK,
		"evil.example:8080":      http.StatusForbidden,
		"192.168.1.5:8080":       http.StatusForbidden,
		"localhost.evil.example": http.StatusForbidden,
		"":                       http.StatusForbidden,
	} {
		// A recorder, as a client would fill an empty Host in.
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+g.Token())
		rec := httptest.NewRecorder()
		g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, secret) })).ServeHTTP(rec, req)
		if rec.Code != want || (want != http.StatusOK && strings.Contains(rec.Body.String(), secret)) {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	// Through a real connection too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+g.Token())
	if resp, body := do(t, nil, req); resp.StatusCode != http.StatusForbidden || strings.Contains(body, secret) {
		t.Errorf("Host evil.example: %d %q", resp.StatusCode, body)
	}
	// LoopbackOnly, the agent's default on loopback without a token, checks
	// the name alone.
	for host, want := range map[string]int{"127.0.0.1:7474": http.StatusOK, "localhost": http.StatusOK, "evil.example:7474": http.StatusForbidden} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		LoopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, secret) })).ServeHTTP(rec, req)
		if rec.Code != want || (want != http.StatusOK && strings.Contains(rec.Body.String(), secret)) {
			t.Errorf("LoopbackOnly, Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	// Without LoopbackHosts, any name is fine (a server on a public
	// address has names of its own).
	g2, _ := New(Options{Token: g.Token()})
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "perf.example.com"
	req.Header.Set("Authorization", "Bearer "+g.Token())
	rec := httptest.NewRecorder()
	g2.Handler(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("Host perf.example.com without LoopbackHosts: %d, want the handler's 404", rec.Code)
	}
}

func TestTokens(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || len(a) < 26 || CheckToken(a) != nil {
		t.Errorf("NewToken: %q and %q", a, b)
	}
	for tok, ok := range map[string]bool{
		"0123456789abcdef":                     true,
		"c2VjcmV0LXNlY3JldC1zZWNyZXQ=":         true,
		"123e4567-e89b-12d3-a456-426614174000": true,
		"short":                                false,
		"0123456789abcdef;x":                   false,
		"0123456789 abcdef":                    false,
	} {
		if err := CheckToken(tok); (err == nil) != ok || (err != nil && !errors.Is(err, ErrBadToken)) {
			t.Errorf("CheckToken(%q) = %v", tok, err)
		}
	}
	if _, err := New(Options{Token: "short"}); !errors.Is(err, ErrBadToken) {
		t.Errorf("New with a short token: %v", err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  0123456789abcdef0123\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := ReadTokenFile(file); err != nil || tok != "0123456789abcdef0123" {
		t.Errorf("ReadTokenFile: %q %v", tok, err)
	}
	os.Chmod(file, 0o644)
	if _, err := ReadTokenFile(file); err == nil || !strings.Contains(err.Error(), "readable by other users") {
		t.Errorf("ReadTokenFile of a 0644 file: %v", err)
	}
	if _, err := ReadTokenFile(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("ReadTokenFile of a missing file: %v", err)
	}
	os.Chmod(file, 0o600)
	os.WriteFile(file, []byte("short\n"), 0o600)
	if _, err := ReadTokenFile(file); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), file) {
		t.Errorf("ReadTokenFile of a short token: %v", err)
	}
}

func TestListen(t *testing.T) {
	ln, local, err := Listen("127.0.0.1:0")
	if err != nil || !local {
		t.Fatalf("Listen 127.0.0.1:0: local %v, %v", local, err)
	}
	ln.Close()
	if _, _, err := Listen("127.0.0.1:bogus"); err == nil {
		t.Error("Listen on a bad port: no error")
	}

	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, local, err = Listen("unix:" + sock)
	if err != nil || !local {
		t.Fatalf("Listen unix: local %v, %v", local, err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	// A live socket is not taken over.
	if _, _, err := Listen("unix:" + sock); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("Listen on a live socket: %v", err)
	}
	// A stale one (a killed server's) is.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, _, err = Listen("unix:" + sock)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	ln.Close()
	// A file is not a socket to replace.
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if _, _, err := Listen("unix:" + file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a file: %v", err)
	}
}

// TestLocalAddr: what may listen without a token is what Listen reports
// as local, decided from the address alone.
func TestLocalAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7474":      true,
		"127.1.2.3:7474":      true,
		"[::1]:7474":          true,
		"localhost:7474":      true,
		"LOCALHOST.:7474":     true,
		"unix:/run/ph.sock":   true,
		"unix:":               false,
		":7474":               false, // every interface
		"0.0.0.0:7474":        false,
		"[::]:7474":           false,
		"192.168.1.10:7474":   false,
		"example.com:7474":    false,
		"localhost.evil:7474": false,
		"127.0.0.1":           false, // no port: not an address Listen takes
	} {
		if got := LocalAddr(addr); got != want {
			t.Errorf("LocalAddr(%q) = %v, want %v", addr, got, want)
		}
	}
	// The same answer as Listen's, where both can be had.
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "0.0.0.0:0"} {
		ln, local, err := Listen(addr)
		if err != nil {
			t.Logf("Listen %s: %v (skipped)", addr, err)
			continue
		}
		ln.Close()
		if LocalAddr(addr) != local {
			t.Errorf("%s: LocalAddr %v, Listen's local %v", addr, LocalAddr(addr), local)
		}
	}
}
