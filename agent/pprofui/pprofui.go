// Package pprofui serves pprof's own web UI (graph, flame graph, top, peek,
// source, disassembly, download) over the profiles of an observation, with
// an index page that lists them.
//
// pprof's UI is built by github.com/google/pprof/driver, which normally
// fetches a profile, listens on a port and opens a browser. Here it gets the
// profile in memory, hands its handlers back instead of listening, never
// opens a browser, never symbolizes, fetches or writes report files, and is
// mounted under /profile/<i>/. Two traps remain, both pprof's:
//
//   - The Graph view runs Graphviz's dot; without it that view answers 501.
//   - pprof keeps its default view settings in process-wide state: every
//     UI starts from pprof's defaults and the URL carries each change, so
//     another driver.PProf call in the process with other flags would
//     change the defaults here too. "Save as ..." in the config menu writes
//     pprof's settings file under os.UserConfigDir, as `go tool pprof
//     -http` does; nothing else is written.
package pprofui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Options tune the handler.
type Options struct {
	// ErrorLog receives the errors pprof reports while rendering a view
	// (a bad focus regexp, dot missing), one per line; nil discards
	// them. The browser is shown the same errors.
	ErrorLog io.Writer
}

// Handler serves the index of o's profiles at / and pprof's web UI for
// profile i (o.Profiles[i]) under /profile/i/. Each profile's UI is built
// on its first request and kept; it holds a copy of its profile, so memory
// stays proportional to the observation. o's profiles are never modified. Unsafe cross-origin requests are refused
// (http.CrossOriginProtection), so another site cannot make the browser
// save or delete pprof configs.
func Handler(o *observation.Observation, opts Options) (http.Handler, error) {
	if o == nil {
		return nil, errors.New("pprofui: nil observation")
	}
	s := &server{obs: o, uis: make([]profileUI, len(o.Profiles))}
	if opts.ErrorLog != nil {
		s.log = &lockedWriter{w: opts.ErrorLog}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	// A subtree pattern: ServeMux redirects /profile/3 to /profile/3/, which
	// pprof's relative links ("./top") need.
	mux.HandleFunc("/profile/{i}/", s.profile)
	return http.NewCrossOriginProtection().Handler(mux), nil
}

type server struct {
	obs *observation.Observation
	log *lockedWriter // nil: discard pprof's errors
	uis []profileUI
}

// profileUI is one profile's pprof UI, built once.
type profileUI struct {
	once     sync.Once
	handlers map[string]http.Handler
	err      error
}

func (s *server) profile(w http.ResponseWriter, r *http.Request) {
	is := r.PathValue("i")
	i, err := strconv.Atoi(is)
	if err != nil || i < 0 || i >= len(s.obs.Profiles) || strconv.Itoa(i) != is {
		http.Error(w, fmt.Sprintf("no profile %q in this observation (it has %d)", is, len(s.obs.Profiles)), http.StatusNotFound)
		return
	}
	ui := &s.uis[i]
	ui.once.Do(func() { ui.handlers, ui.err = s.build(i) })
	if ui.err != nil {
		http.Error(w, ui.err.Error(), http.StatusInternalServerError)
		return
	}
	http.StripPrefix("/profile/"+is, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := ui.handlers[r.URL.Path]
		// pprof's own server falls back to http.DefaultServeMux, which may
		// hold net/http/pprof's live endpoints: not here.
		if h == nil {
			http.NotFound(w, r)
			return
		}
		// pprof's menu saves with POST and deletes with DELETE; refusing
		// other methods keeps a plain link or <img> from writing.
		if want := configMethods[r.URL.Path]; want != "" && r.Method != want {
			w.Header().Set("Allow", want)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})).ServeHTTP(w, r)
}

var configMethods = map[string]string{"/saveconfig": http.MethodPost, "/deleteconfig": http.MethodDelete}

// driverMu serializes driver.PProf: it sets package-level state in pprof
// (its interactive mode and current config) without a lock of its own.
var driverMu sync.Mutex

// build runs pprof's driver for profile i and returns the handlers its web
// UI would have served at "/".
func (s *server) build(i int) (map[string]http.Handler, error) {
	p := s.obs.Profiles[i]
	if p.Profile == nil {
		return nil, fmt.Errorf("profile %d (%s from %s) has no data", i, p.Kind, p.Source)
	}
	name := fmt.Sprintf("profile %d (%s from %s)", i, p.Kind, p.Source)
	var handlers map[string]http.Handler
	driverMu.Lock()
	defer driverMu.Unlock()
	err := driver.PProf(&driver.Options{
		// -http makes pprof build its web UI; the address is never listened
		// on (HTTPServer below captures the handlers). With port 0 given,
		// pprof does not probe for a free port either.
		Flagset: newFlags("-http=127.0.0.1:0", "-no_browser", name),
		Fetch:   fetcher{p.Profile},
		// The observation's profiles were symbolized when collected, and
		// the binaries they name may be gone or rebuilt since: resolving
		// addresses again could only make them wrong.
		Sym:           noSymbolizer{},
		UI:            quietUI{s.log},
		Writer:        noWriter{},
		HTTPTransport: noTransport{},
		HTTPServer: func(a *driver.HTTPServerArgs) error {
			handlers = a.Handlers
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s in pprof: %w", name, err)
	}
	if handlers == nil {
		return nil, fmt.Errorf("opening %s in pprof: no web UI was built", name)
	}
	return handlers, nil
}

// fetcher hands pprof a copy of the profile: pprof edits what it fetches
// (drops frames, rewrites mappings), and the observation must stay as
// loaded. It returns no source URL: pprof saves a copy of every profile
// with one into $PPROF_TMPDIR or ~/pprof, as it does for profiles fetched
// over HTTP, and this one was fetched from nowhere.
type fetcher struct{ p *profile.Profile }

func (f fetcher) Fetch(string, time.Duration, time.Duration) (*profile.Profile, string, error) {
	return f.p.Copy(), "", nil
}

type noSymbolizer struct{}

func (noSymbolizer) Symbolize(string, driver.MappingSources, *profile.Profile) error { return nil }

// noWriter refuses report files: pprof writes one only for -output, which
// is never given, and a web server must not create files on request.
type noWriter struct{}

func (noWriter) Open(name string) (io.WriteCloser, error) {
	return nil, fmt.Errorf("pprofui writes no files (asked for %s)", name)
}

// noTransport refuses network access: the profile is in memory and
// symbolization is off, so pprof has nothing to fetch.
type noTransport struct{}

func (noTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("pprofui fetches nothing (asked for %s)", r.URL)
}

// quietUI is pprof's UI with no terminal: no prompt, no browser, no
// "Serving web UI on" banner; errors go to the log if there is one.
type quietUI struct{ log *lockedWriter }

func (quietUI) ReadLine(string) (string, error) { return "", io.EOF }
func (quietUI) Print(...any)                    {}
func (u quietUI) PrintErr(args ...any) {
	if u.log != nil {
		u.log.println(strings.TrimSuffix(fmt.Sprint(args...), "\n"))
	}
}
func (quietUI) IsTerminal() bool                    { return false }
func (quietUI) WantBrowser() bool                   { return false }
func (quietUI) SetAutoComplete(func(string) string) {}

// lockedWriter writes whole lines from concurrent requests one at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) println(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, line)
}
