// Package webauth guards perfhound's HTTP servers (serve's pprof UI, and the
// agent's API next) against other users of the host, the Jupyter way: a
// random token per run, printed in the URL the user opens. The first request
// that carries it as ?token= gets it back as an HttpOnly, SameSite=Strict
// cookie and a redirect to the same URL without it; API clients send it as
// "Authorization: Bearer TOKEN". Every other request is refused with 401 and
// no data. Tokens are compared in constant time.
//
// Listening on loopback keeps other hosts out but not the other users of
// this one, nor a web page that rebinds its domain name to 127.0.0.1: the
// token stops both, and a server reached through loopback (or a Unix
// socket) also refuses requests whose Host header is not a loopback name,
// the DNS rebinding defence of earlier versions.
//
// Cookies do not separate ports: another server on the same host name can
// read this one's cookie if the browser visits it. The cookie's name carries
// the port the browser used, so two perfhound servers do not overwrite each
// other's, but only a Unix socket (reached through ssh -L) keeps a hostile
// local server from seeing it.
//
// Everything here is the standard library: crypto/rand.Text for the token,
// crypto/subtle for the comparison; no maintained Go package implements
// this token-then-cookie flow (gorilla/csrf and the JWT middlewares solve
// other problems).
package webauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// TokenEnv is the environment variable a token can be given in, instead
// of a file; never on the command line, where ps shows it to every user.
const TokenEnv = "PERFHOUND_TOKEN"

// MinTokenLen is the shortest token a user may give: 16 characters of hex
// are 64 bits. Generated tokens are 26 characters of base32, 130 bits.
const MinTokenLen = 16

// ErrBadToken is returned for a user-given token that is too short or has
// characters that a URL or a cookie would mangle.
var ErrBadToken = errors.New("bad token")

// NewToken returns a fresh random token of at least 128 bits.
func NewToken() string { return rand.Text() }

// CheckToken says whether a user-given token can be used: at least
// MinTokenLen characters of letters, digits and "-._~+/=" (hex, base64,
// base32 and UUIDs all qualify), so that it survives a URL and a cookie.
func CheckToken(token string) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("%w: %d characters, want at least %d", ErrBadToken, len(token), MinTokenLen)
	}
	for _, c := range token {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~+/=", c)) {
			return fmt.Errorf("%w: character %q; use letters, digits and -._~+/=", ErrBadToken, c)
		}
	}
	return nil
}

// ReadTokenFile reads a token from the first line of path. The file must
// not be readable by group or others (as ssh demands of its keys): a token
// that other users can read protects nothing.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("reading the token: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by other users (mode %04o): chmod 600 it", path, perm)
	}
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("reading the token from %s: %w", path, err)
	}
	token, _, _ := strings.Cut(string(buf[:n]), "\n")
	token = strings.TrimSpace(token)
	if err := CheckToken(token); err != nil {
		return "", fmt.Errorf("token in %s: %w", path, err)
	}
	return token, nil
}

// Options configure a Guard.
type Options struct {
	// Token is the secret; empty means a new random one (NewToken).
	Token string
	// LoopbackHosts refuses (403) requests whose Host header is not a
	// loopback address or "localhost": set it when the server listens on
	// loopback or a Unix socket, where no other name can be legitimate.
	LoopbackHosts bool
}

// Guard checks every request of a server for the token.
type Guard struct {
	token         string
	sum           [sha256.Size]byte
	loopbackHosts bool
}

// New returns a Guard for opts.
func New(opts Options) (*Guard, error) {
	token := opts.Token
	if token == "" {
		token = NewToken()
	} else if err := CheckToken(token); err != nil {
		return nil, err
	}
	return &Guard{token: token, sum: sha256.Sum256([]byte(token)), loopbackHosts: opts.LoopbackHosts}, nil
}

// Token returns the secret, for the URL the user is shown.
func (g *Guard) Token() string { return g.token }

// URL returns base (such as "http://127.0.0.1:8080/") with the token as
// its query: the URL to print for the user to open.
func (g *Guard) URL(base string) string {
	return base + "?token=" + url.QueryEscape(g.token)
}

// cookieBase is the cookie's name, before the port.
const cookieBase = "perfhound-token"

// Handler wraps h: requests with the token reach it, others get 401 (or
// 403 for a Host that is not loopback's) and a one-line explanation.
func (g *Guard) Handler(h http.Handler) http.Handler {
	if g.loopbackHosts {
		return LoopbackOnly(g.tokenHandler(h))
	}
	return g.tokenHandler(h)
}

func (g *Guard) tokenHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The token must never leave in a Referer, whatever page links
		// where.
		w.Header().Set("Referrer-Policy", "no-referrer")
		q := r.URL.Query()
		if q.Has("token") {
			if !g.valid(q.Get("token")) {
				refuse(w, http.StatusUnauthorized, "wrong token: open the URL this perfhound server printed when it started")
				return
			}
			// Keep the token out of the address bar, the history and the
			// links pprof builds from the current URL: a cookie carries it
			// from now on.
			http.SetCookie(w, &http.Cookie{
				Name:     cookieName(r),
				Value:    g.token,
				Path:     "/",
				HttpOnly: true,
				Secure:   r.TLS != nil, // over TLS, never sent in clear afterwards
				SameSite: http.SameSiteStrictMode,
			})
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				q.Del("token")
				// One leading slash: "//host/x" would leave for another host.
				u := url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/"), RawQuery: q.Encode()}
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, u.String(), http.StatusSeeOther)
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, token, _ := strings.Cut(auth, " ")
			if !strings.EqualFold(scheme, "Bearer") || !g.valid(strings.TrimSpace(token)) {
				refuse(w, http.StatusUnauthorized, "wrong token in the Authorization header (want: Bearer TOKEN)")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(cookieName(r)); err == nil && g.valid(c.Value) {
			h.ServeHTTP(w, r)
			return
		}
		refuse(w, http.StatusUnauthorized, "this perfhound server needs its token: open the URL it printed when it started (with ?token=), or send Authorization: Bearer TOKEN")
	})
}

// valid compares in constant time, over hashes so that not even the
// token's length shows in the timing.
func (g *Guard) valid(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], g.sum[:]) == 1
}

// cookieName is the cookie's name for the port the browser addressed
// (which an SSH tunnel may change): browsers share cookies between the
// ports of a host, and two servers must not overwrite each other's.
func cookieName(r *http.Request) string {
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		return cookieBase + "-" + port
	}
	return cookieBase
}

func refuse(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="perfhound"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}

// loopbackHost says whether a Host header names this machine's loopback:
// "localhost" or a loopback address, with or without a port. A web page
// whose domain was rebound to 127.0.0.1 sends its own name instead.
// LoopbackOnly wraps h for a server on loopback that asks for no token
// (the agent's default): requests addressed to any name but a loopback one
// get 403, so a web page on another site cannot reach it through DNS
// rebinding. Requests from this host's users are not told apart: who
// must keep them out sets a token.
func LoopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			refuse(w, http.StatusForbidden, fmt.Sprintf("this perfhound server listens on a loopback address and answers only to loopback names, not %q", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
