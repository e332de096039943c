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
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfhound/perfhound/agent/pprofui"
	"github.com/perfhound/perfhound/agent/webauth"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

func newServe() *cobra.Command {
	opts := serveOptions{listen: "127.0.0.1:8080"}
	var mem memoryFlag
	cmd := &cobra.Command{
		Use:   "serve [flags] DIR",
		Short: "Browse the profiles of a saved observation in pprof's web UI",
		Long: `Serve pprof's own web UI (flame graph, top, graph, peek, source, download)
over every profile of the observation saved in DIR, with an index page that
lists them, until interrupted.

Only who has the token gets in. serve prints a URL with a random token
(http://127.0.0.1:8080/?token=...); opening it sets a cookie for that
address and port, and the browser is sent on to the same page without the
token. Scripts send "Authorization: Bearer TOKEN" instead. Every other
request is refused with 401 and no data, so other users of the host cannot
use the UI with this user's rights. To fix the token (for a service), put
it in a file only you can read and give --token-file FILE, or set
` + webauth.TokenEnv + `; never on the command line, where ps shows it.

The UI shows function names, source file names, and, in the Source view,
the lines of a source file only when a profile names it and it lies under
a --source-root (symlinks resolved: a link out of the root is refused);
without one the Source view shows the profile's lines without their text.
No binary is read (the Disassemble view says so), and "Save as ..." in the
config menu keeps the config for this run only.

It listens on the loopback address by default and then also answers only
requests addressed to a loopback name (a defence against DNS rebinding);
--listen unix:PATH listens on a Unix socket only this user can connect to;
any other address is allowed, with a warning. The Graph view needs
Graphviz's dot.

Exit status: 0 when interrupted, 2 when DIR is not an observation, a flag
is wrong or the address cannot be listened on.`,
		Example: `  sudo perfhound diagnose --pid 4242 --save obs/
  perfhound serve obs/                       # then open the URL it prints
  perfhound serve --source-root ~/src/myapp --source-root /usr/local/go/src obs/
  perfhound serve --listen 127.0.0.1:0 obs/  # any free port, printed on start

  # An observation on a remote host, through an SSH tunnel (open the URL
  # it prints, on this machine):
  ssh -L 8080:127.0.0.1:8080 host perfhound serve /var/tmp/obs/
  # or through a Unix socket on the remote host:
  ssh -L 8080:/tmp/perfhound.sock host perfhound serve --listen unix:/tmp/perfhound.sock /var/tmp/obs/`,
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
			opts.budget = budget
			return mem.explain(serve(ctx, args[0], opts, cmd.ErrOrStderr(), nil))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.listen, "listen", opts.listen, "host:port to listen on (port 0 picks a free port), or unix:PATH for a Unix socket")
	f.StringArrayVar(&opts.sourceRoots, "source-root", nil, "a directory whose files the Source view may show when a profile names them (repeatable)")
	f.StringVar(&opts.tokenFile, "token-file", "", "read the token from the first line of this file (mode 0600) instead of making one")
	mem.add(cmd)
	return cmd
}

// serveOptions are serve's flags.
type serveOptions struct {
	listen      string
	sourceRoots []string
	tokenFile   string
	budget      *profdecode.Budget // for loading the observation; nil: none
}

// shutdownGrace is how long serve waits for requests in flight once
// interrupted.
const shutdownGrace = 5 * time.Second

// serve serves the observation in dir until ctx is done, then shuts down
// gracefully. ready, if not nil, is called with the address listened on
// and the token once requests can be made: tests listen on port 0.
func serve(ctx context.Context, dir string, opts serveOptions, stderr io.Writer, ready func(addr, token string)) error {
	token, from, err := serveToken(opts.tokenFile)
	if err != nil {
		return err
	}
	o, err := loadUntilDone(ctx, dir, opts.budget)
	if err != nil {
		return err
	}
	if o == nil {
		fmt.Fprintf(stderr, "perfhound: interrupted while loading %s\n", dir)
		return nil
	}
	ui, err := pprofui.New(o, pprofui.Options{ErrorLog: stderr, SourceRoots: opts.sourceRoots})
	if err != nil {
		return err
	}
	defer ui.Close()
	ln, local, err := webauth.Listen(opts.listen)
	if err != nil {
		return err
	}
	guard, err := webauth.New(webauth.Options{Token: token, LoopbackHosts: local})
	if err != nil {
		ln.Close()
		return err
	}
	addr := ln.Addr().String()
	if !local {
		fmt.Fprintf(stderr, "perfhound: warning: %s is reachable from other hosts over plain HTTP, and the UI shows function names, source file names and source code to whoever has the token\n", addr)
	}
	srv := &http.Server{Handler: guard.Handler(ui), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	fmt.Fprintf(stderr, "serving %s of %s %s (Ctrl-C to stop)\n", plural(len(o.Profiles), "profile"), o.Meta.Title(), where(ln.Addr(), guard, from))
	if ready != nil {
		ready(addr, guard.Token())
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

// serveToken is the token the user gave, from a file or the environment,
// and where from; "" for a new random one.
func serveToken(file string) (token, from string, err error) {
	if file != "" {
		token, err := webauth.ReadTokenFile(file)
		return token, file, err
	}
	if token := os.Getenv(webauth.TokenEnv); token != "" {
		if err := webauth.CheckToken(token); err != nil {
			return "", "", fmt.Errorf("$%s: %w", webauth.TokenEnv, err)
		}
		return token, "$" + webauth.TokenEnv, nil
	}
	return "", "", nil
}

// where says where to point the browser: the URL with the token, unless
// the user gave the token (then it stays out of the terminal and logs).
func where(a net.Addr, g *webauth.Guard, from string) string {
	if a.Network() == "unix" {
		const port = "8080"
		u := "http://127.0.0.1:" + port + "/"
		if from == "" {
			u = g.URL(u)
		}
		s := fmt.Sprintf("on unix:%s: ssh -L %s:%s HOST, then open %s", a, port, a, u)
		if from != "" {
			s += " with the token from " + from
		}
		return s
	}
	u := "http://" + a.String() + "/"
	if from != "" {
		return "at " + u + " with the token from " + from
	}
	return "at " + g.URL(u)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
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
