package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfhound/perfhound/agent/pprofui"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

func newServe() *cobra.Command {
	listen := "127.0.0.1:8080"
	var mem memoryFlag
	cmd := &cobra.Command{
		Use:   "serve [flags] DIR",
		Short: "Browse the profiles of a saved observation in pprof's web UI",
		Long: `Serve pprof's own web UI (flame graph, top, graph, peek, source,
disassembly, download) over every profile of the observation saved in DIR,
with an index page that lists them, until interrupted.

The UI shows function names, source file names and, in the Source view, the
lines of those source files that this user can read on this host. It listens
on the loopback address by default and then answers only requests addressed
to a loopback name (a defence against DNS rebinding); listening on any other
address is allowed, with a warning. The Graph view needs Graphviz's dot.

Exit status: 0 when interrupted, 2 when DIR is not an observation or the
address cannot be listened on.`,
		Example: `  sudo perfhound diagnose --pid 4242 --save obs/
  perfhound serve obs/                       # then open http://127.0.0.1:8080/
  perfhound serve --listen 127.0.0.1:0 obs/  # any free port, printed on start

  # An observation on a remote host, through an SSH tunnel:
  ssh -L 8080:127.0.0.1:8080 host perfhound serve /var/tmp/obs/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("serve needs one observation directory, got %d argument(s)", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			budget, restore, err := mem.budget()
			if err != nil {
				return err
			}
			defer restore()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return mem.explain(serve(ctx, args[0], budget, listen, cmd.ErrOrStderr(), nil))
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listen, "host:port to listen on (port 0 picks a free port)")
	mem.add(cmd)
	return cmd
}

// shutdownGrace is how long serve waits for requests in flight once
// interrupted.
const shutdownGrace = 5 * time.Second

// serve serves the observation in dir, loaded within budget, on listen
// until ctx is done, then shuts down gracefully. ready, if not nil, is called with the address
// listened on once requests can be made: tests listen on port 0.
func serve(ctx context.Context, dir string, budget *profdecode.Budget, listen string, stderr io.Writer, ready func(addr string)) error {
	o, err := loadUntilDone(ctx, dir, budget)
	if err != nil {
		return err
	}
	if o == nil {
		fmt.Fprintf(stderr, "perfhound: interrupted while loading %s\n", dir)
		return nil
	}
	h, err := pprofui.Handler(o, pprofui.Options{ErrorLog: stderr})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	addr := ln.Addr().String()
	if isLoopback(ln.Addr()) {
		h = loopbackHostsOnly(h)
	} else {
		fmt.Fprintf(stderr, "perfhound: warning: %s is reachable from other hosts, and the UI shows function names, source file names and source code\n", addr)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	n := len(o.Profiles)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(stderr, "serving %d profile%s of %s at http://%s/ (Ctrl-C to stop)\n", n, plural, describeTarget(o.Meta), addr)
	if ready != nil {
		ready(addr)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// loadForServe is how serve loads an observation; tests replace it with
// one that blocks, to interrupt serve while it loads.
var loadForServe = loadObservation

// loadUntilDone loads dir for serve, or gives up when ctx is done first:
// serve catches SIGINT and SIGTERM from the start, so a long load must
// still end on them. The load then goes on until the process exits. An
// interrupt is no error (exit 0, as interrupting serve always is): it
// returns a nil observation.
func loadUntilDone(ctx context.Context, dir string, budget *profdecode.Budget) (*observation.Observation, error) {
	type loaded struct {
		o   *observation.Observation
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		o, err := loadForServe(dir, budget)
		done <- loaded{o, err}
	}()
	select {
	case l := <-done:
		return l.o, l.err
	case <-ctx.Done():
		return nil, nil
	}
}

// loadObservation loads dir within budget, saying plainly when dir does
// not exist or is not a directory, which Load reports as a missing
// observation.json.
func loadObservation(dir string, budget *profdecode.Budget) (*observation.Observation, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such directory", dir)
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is a file, not an observation directory (one that 'perfhound diagnose --save' writes)", dir)
	}
	return observation.LoadWith(dir, observation.LoadOptions{Budget: budget})
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// loopbackHostsOnly refuses requests whose Host header is not a loopback
// name or address. A server on 127.0.0.1 is out of other hosts' reach, but
// a web page can rebind its own domain name to 127.0.0.1 and read the UI
// through the user's browser; the Host header is what gives that away.
func loopbackHostsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		ip := net.ParseIP(host)
		if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, fmt.Sprintf("perfhound serve on a loopback address answers only to loopback names, not %q", r.Host), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// describeTarget names what was watched, for the start-up line.
func describeTarget(m observation.Meta) string {
	t := m.Target
	switch {
	case t.Kind == observation.TargetCommand && len(t.Command) > 0:
		return strings.Join(t.Command, " ")
	case t.Kind == observation.TargetProcess:
		return fmt.Sprintf("process %d on %s", t.PID, m.Host)
	case t.Kind == observation.TargetURL && t.URL != "":
		return t.URL
	case t.Kind == observation.TargetApp && t.App != "":
		return "app " + t.App
	case t.Kind == observation.TargetHost:
		return "host " + m.Host
	}
	return t.Kind + " on " + m.Host
}
