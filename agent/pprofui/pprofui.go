// Package pprofui serves pprof's own web UI (graph, flame graph, top, peek,
// source, disassembly, download) over the profiles of an observation, with
// an index page that lists them.
//
// pprof's UI is built by github.com/google/pprof/driver, which normally
// fetches a profile, listens on a port and opens a browser. Here it gets the
// profile in memory, hands its handlers back instead of listening, never
// opens a browser, never symbolizes, fetches or writes report files, and is
// mounted under /profile/<i>/. Who may reach it is the caller's business
// (agent/webauth); what it shows of the host is decided here:
//
//   - The Source view shows a file only if a profile names it and it lies
//     under one of Options.SourceRoots (see source.go); pprof reads only a
//     private snapshot of those files.
//   - No binary is opened: the Disassemble view answers 501 and the Source
//     view has no assembly. The profiles were symbolized when collected,
//     and the binaries they name may be gone, rebuilt, or anybody's.
//   - "Save as ..." in the config menu writes pprof's settings into a
//     directory of this run, removed by Close, never the user's home.
//
// Two traps remain, both pprof's:
//
//   - The Graph view runs Graphviz's dot; without it that view answers 501.
//   - pprof keeps its current config (view defaults, source path) in
//     process-wide state: every UI starts from pprof's defaults and the URL
//     carries each change, so another driver.PProf call in the process with
//     other flags would change them here too, and the Source view would
//     then read real files: nothing else in perfhound calls it, and nothing
//     may. The Servers of one process share one snapshot and settings
//     directory, and must have the same source roots.
package pprofui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// SourceRoots are the directories whose files the Source view may
	// show, when a profile names them; none: it shows no file's text.
	SourceRoots []string
}

// ErrOtherRoots is returned by New while another Server of the process
// has other source roots: pprof's source path is process-wide.
var ErrOtherRoots = errors.New("another pprofui server in this process has other source roots")

// Server serves the index of an observation's profiles at / and pprof's
// web UI for profile i (o.Profiles[i]) under /profile/i/. Each profile's
// UI is built on its first request and kept; it holds a copy of its
// profile, so memory stays proportional to the observation. o's profiles
// are never modified. Unsafe cross-origin requests are refused
// (http.CrossOriginProtection), so another site cannot make the browser
// save or delete pprof configs.
type Server struct {
	h      http.Handler
	obs    *observation.Observation
	log    *lockedWriter // nil: discard pprof's errors
	uis    []profileUI
	run    *runState
	close  sync.Once
	closed atomic.Bool
}

// New returns a Server for o; Close removes what it wrote.
func New(o *observation.Observation, opts Options) (*Server, error) {
	if o == nil {
		return nil, errors.New("pprofui: nil observation")
	}
	s := &Server{obs: o, uis: make([]profileUI, len(o.Profiles))}
	if opts.ErrorLog != nil {
		s.log = &lockedWriter{w: opts.ErrorLog}
	}
	run, err := acquireRun(opts.SourceRoots, s.logf)
	if err != nil {
		return nil, err
	}
	s.run = run
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	// A subtree pattern: ServeMux redirects /profile/3 to /profile/3/, which
	// pprof's relative links ("./top") need.
	mux.HandleFunc("/profile/{i}/", s.profile)
	s.h = http.NewCrossOriginProtection().Handler(mux)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A closed Server's snapshot may be gone, or another's: pprof would
	// look for files elsewhere.
	if s.closed.Load() {
		http.Error(w, "this pprof UI is closed", http.StatusServiceUnavailable)
		return
	}
	s.h.ServeHTTP(w, r)
}

// Close removes the source snapshot and pprof's settings once the last
// Server of the process is closed. Requests after Close get 503.
func (s *Server) Close() error {
	var err error
	s.close.Do(func() {
		s.closed.Store(true)
		err = releaseRun()
	})
	return err
}

func (s *Server) logf(line string) {
	if s.log != nil {
		s.log.println(line)
	}
}

// runState is what pprof's process-wide config forces the Servers of a
// process to share: one directory with the source snapshot (pprof's
// -source_path) and pprof's settings (its XDG_CONFIG_HOME), and so one set
// of source roots.
type runState struct {
	dir      string // removed when the last Server closes
	config   string
	src      *sources
	rootsKey string
}

var run struct {
	mu    sync.Mutex
	n     int // open Servers
	state *runState
}

func acquireRun(roots []string, log func(string)) (*runState, error) {
	rs, err := openRoots(roots)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, r := range rs {
		paths = append(paths, r.path)
	}
	key := strings.Join(paths, "\x00")
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.n > 0 {
		closeRoots(rs)
		if key != run.state.rootsKey {
			return nil, fmt.Errorf("%w (%s)", ErrOtherRoots, strings.Join(paths, ", "))
		}
		run.n++
		return run.state, nil
	}
	st, err := newRunState(rs, key, log)
	if err != nil {
		closeRoots(rs)
		return nil, err
	}
	run.state, run.n = st, 1
	return st, nil
}

func newRunState(roots []sourceRoot, key string, log func(string)) (*runState, error) {
	dir, err := os.MkdirTemp("", "perfhound-pprofui-")
	if err != nil {
		return nil, fmt.Errorf("pprofui: %w", err)
	}
	st := &runState{dir: dir, config: filepath.Join(dir, "config"), rootsKey: key}
	src := filepath.Join(dir, "src")
	if strings.ContainsRune(src, filepath.ListSeparator) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pprofui: temporary directory %s has a %q, which pprof's source path cannot hold: set TMPDIR", dir, filepath.ListSeparator)
	}
	for _, d := range []string{st.config, src} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pprofui: %w", err)
		}
	}
	st.src = &sources{dir: src, roots: roots, log: log, laid: map[string]bool{}}
	return st, nil
}

func releaseRun() error {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.n--; run.n > 0 {
		return nil
	}
	st := run.state
	run.state = nil
	closeRoots(st.src.roots)
	if err := os.RemoveAll(st.dir); err != nil {
		return fmt.Errorf("pprofui: removing %s: %w", st.dir, err)
	}
	return nil
}

// profileUI is one profile's pprof UI, built once.
type profileUI struct {
	once     sync.Once
	handlers map[string]http.Handler
	names    []string // the file names pprof was given
	err      error
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	is := r.PathValue("i")
	i, err := strconv.Atoi(is)
	if err != nil || i < 0 || i >= len(s.obs.Profiles) || strconv.Itoa(i) != is {
		http.Error(w, fmt.Sprintf("no profile %q in this observation (it has %d)", is, len(s.obs.Profiles)), http.StatusNotFound)
		return
	}
	ui := &s.uis[i]
	ui.once.Do(func() { ui.handlers, ui.names, ui.err = s.build(i) })
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
		// No binary is opened (noObjTool): say so, rather than pprof's
		// "no matches found" (and its line on stdout per mapping).
		if r.URL.Path == "/disasm" {
			http.Error(w, "perfhound reads no binaries: the disassembly is not available (go tool pprof -disasm has it, from the binary)", http.StatusNotImplemented)
			return
		}
		// pprof's Source view reads the files it is given from the
		// snapshot: they must all be there first.
		if r.URL.Path == "/source" {
			if err := s.run.src.serve(ui.names, func() { h.ServeHTTP(w, r) }); err != nil {
				s.logf(err.Error())
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			return
		}
		h.ServeHTTP(w, r)
	})).ServeHTTP(w, r)
}

var configMethods = map[string]string{"/saveconfig": http.MethodPost, "/deleteconfig": http.MethodDelete}

// driverMu serializes driver.PProf: it sets package-level state in pprof
// (its interactive mode and current config) without a lock of its own,
// and build changes the environment around it.
var driverMu sync.Mutex

// build runs pprof's driver for profile i and returns the handlers its web
// UI would have served at "/", and the file names its profile has.
func (s *Server) build(i int) (map[string]http.Handler, []string, error) {
	p := s.obs.Profiles[i]
	if p.Profile == nil {
		return nil, nil, fmt.Errorf("profile %d (%s from %s) has no data", i, p.Kind, p.Source)
	}
	name := fmt.Sprintf("profile %d (%s from %s)", i, p.Kind, p.Source)
	var handlers map[string]http.Handler
	f := &fetcher{p: p.Profile}
	driverMu.Lock()
	defer driverMu.Unlock()
	err := withConfigDir(s.run.config, func() error {
		return driver.PProf(&driver.Options{
			// -http makes pprof build its web UI; the address is never
			// listened on (HTTPServer below captures the handlers). With
			// port 0 given, pprof does not probe for a free port either.
			// -trim_path=/ makes every absolute file name relative, found
			// in the snapshot (source.go).
			Flagset: newFlags("-http=127.0.0.1:0", "-no_browser",
				"-source_path="+s.run.src.dir, "-trim_path=/", name),
			Fetch: f,
			// The observation's profiles were symbolized when collected,
			// and the binaries they name may be gone or rebuilt since:
			// resolving addresses again could only make them wrong.
			Sym:           noSymbolizer{},
			Obj:           noObjTool{},
			UI:            quietUI{s.log},
			Writer:        noWriter{},
			HTTPTransport: noTransport{},
			HTTPServer: func(a *driver.HTTPServerArgs) error {
				handlers = a.Handlers
				return nil
			},
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s in pprof: %w", name, err)
	}
	if handlers == nil {
		return nil, nil, fmt.Errorf("opening %s in pprof: no web UI was built", name)
	}
	return handlers, f.names, nil
}

// withConfigDir runs f with XDG_CONFIG_HOME set to dir: pprof reads and
// writes its saved configs under os.UserConfigDir, and settles on the file
// when it builds a web UI. The caller holds driverMu.
func withConfigDir(dir string, f func() error) error {
	const env = "XDG_CONFIG_HOME"
	old, had := os.LookupEnv(env)
	if err := os.Setenv(env, dir); err != nil {
		return err
	}
	defer func() {
		if had {
			os.Setenv(env, old)
		} else {
			os.Unsetenv(env)
		}
	}()
	return f()
}

// fetcher hands pprof a copy of the profile: pprof edits what it fetches
// (drops frames, rewrites mappings), and the observation must stay as
// loaded. It returns no source URL: pprof saves a copy of every profile
// with one into $PPROF_TMPDIR or ~/pprof, as it does for profiles fetched
// over HTTP, and this one was fetched from nowhere.
//
// Its file names are made safe for the Source view (safeName), and kept
// in names.
type fetcher struct {
	p     *profile.Profile
	names []string
}

func (f *fetcher) Fetch(string, time.Duration, time.Duration) (*profile.Profile, string, error) {
	p := f.p.Copy()
	seen := map[string]bool{}
	for _, fn := range p.Function {
		fn.Filename = safeName(fn.Filename)
		if !seen[fn.Filename] {
			seen[fn.Filename] = true
			f.names = append(f.names, fn.Filename)
		}
	}
	return p, "", nil
}

// noObjTool opens no binary: a profile's mappings may name any file of
// the host, and pprof would disassemble it and show the source files its
// debug information names, outside the snapshot.
type noObjTool struct{}

func (noObjTool) Open(file string, _, _, _ uint64, _ string) (driver.ObjFile, error) {
	return nil, fmt.Errorf("pprofui opens no binaries (asked for %s)", file)
}

func (noObjTool) Disasm(file string, _, _ uint64, _ bool) ([]driver.Inst, error) {
	return nil, fmt.Errorf("pprofui disassembles no binaries (asked for %s)", file)
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
