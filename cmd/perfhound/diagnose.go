package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/agent/diagnose"
	"github.com/perfhound/perfhound/analyzer/diagnosis"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// reportFlags are the flags diagnose and analyze share.
type reportFlags struct {
	format string
	output string
}

func (f *reportFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "text", "report format: text, markdown, json or html")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file instead of stdout")
}

func (f *reportFlags) check() error {
	switch f.format {
	case "text", "markdown", "md", "json", "html":
		return nil
	}
	return usageError{fmt.Errorf("unknown --format %q: want text, markdown, json or html", f.format)}
}

// write renders the report fully, then writes it to the file or to w, so
// that a failure leaves no partial report behind. When the file cannot be
// written the report is kept elsewhere, and the error (errNotSaved) says
// where.
func (f *reportFlags) write(w io.Writer, r *diagnosis.Report) error {
	var buf bytes.Buffer
	var err error
	switch f.format {
	case "json":
		err = r.WriteJSON(&buf)
	case "markdown", "md":
		err = r.WriteMarkdown(&buf)
	case "html":
		err = r.WriteHTML(&buf)
	default:
		err = r.WriteText(&buf, verdict.TextOptions{Color: f.output == "" && isTerminal(w)})
	}
	if err != nil {
		return fmt.Errorf("rendering the report: %w", err)
	}
	if f.output != "" {
		return writeOrKeep(w, f.output, extension(f.format), buf.Bytes())
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func newDiagnose() *cobra.Command {
	var (
		rep       reportFlags
		pid       int
		url       string
		duration  = 10 * time.Second
		interval  = time.Second
		noEBPF    bool
		frequency = 99
		save      string
		overwrite bool
		quiet     bool
	)
	cmd := &cobra.Command{
		Use:   "diagnose [flags] [--pid PID | --url URL | -- COMMAND [ARGS...]]",
		Short: "Watch a host, a process, a command or a Go service and say what it is bound by",
		Long: `Watch a target for a window, then say what it is bound by (CPU, memory,
I/O, network, lock contention, or nothing saturated), show the evidence,
and rank what to optimize first with the saving each would bring.

The target is the whole host (the default), a process (--pid), a command
run and watched to its end or to --duration (-- COMMAND ARGS), or a Go
service serving net/http/pprof (--url; when it listens on this host, its
process is watched too). A process or a command is watched with the
children it starts (a shell script, make, a pre-fork server). For a
host, processes are ranked by their share of the host's busy and blocked
time, and the busiest get verdicts of their own.

Collectors: eBPF (on-CPU and off-CPU stacks, run-queue, block I/O and TCP
latencies, page faults) where allowed: as root, or with CAP_BPF,
CAP_PERFMON and CAP_SYS_PTRACE. Without them perfhound uses /proc, PSI
and pprof, and the report says which signals were missing and what that
costs the verdict.

Exit status: 0 when the diagnosis was made, 2 when the target could not
be watched (no such process, a process that exits during the window, a
command that cannot start or exits at once, a URL that does not answer
or is not pprof, a window in which nothing of the target was collected)
or on usage errors, 3 when the report (-o) or the observation (--save)
could not be written where asked: they are then kept in the temporary
directory, named on stderr.`,
		Example: `  sudo perfhound diagnose                          # the whole host, 10 s
  sudo perfhound diagnose --pid 4242 --duration 30s
  sudo perfhound diagnose -- ./mybench -n 1000000    # run a command and watch it to its end
  perfhound diagnose --url http://127.0.0.1:6060    # a Go service with net/http/pprof
  sudo perfhound diagnose --pid 4242 -f html -o report.html --save obs/
  perfhound analyze obs/                            # the same verdict, offline`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); len(args) > 0 && dash != 0 {
				return usageError{fmt.Errorf("unexpected argument %q: put a command to run after --", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rep.check(); err != nil {
				return err
			}
			if duration <= 0 || interval <= 0 || interval > duration {
				return usageError{errors.New("--duration and --interval must be positive, the interval no longer than the duration")}
			}
			if frequency <= 0 || frequency > 10000 {
				return usageError{errors.New("--frequency must be in 1..10000 Hz")}
			}
			if cmd.Flags().Changed("pid") && pid <= 0 {
				return usageError{fmt.Errorf("--pid %d is not a PID", pid)}
			}
			// Where the results go is checked before the window is
			// spent, not after.
			if err := checkOutput(rep.output); err != nil {
				return err
			}
			if save != "" {
				if err := checkSave(save, overwrite); err != nil {
					return err
				}
			}
			opts := diagnose.Options{
				PID: pid, Command: args, URL: url, Duration: duration, Interval: interval,
				EBPF: !noEBPF, Frequency: frequency,
			}
			if err := diagnose.CheckInterval(opts); err != nil {
				return usageError{err}
			}
			stderr := cmd.ErrOrStderr()
			prog := newProgress(stderr, !quiet && isTerminal(stderr), duration, terminalWidth(stderr))
			// A command's output goes to stderr, so that a report on
			// stdout stays clean, above the status line when there is one.
			opts.Stdout, opts.Stderr = prog.passThrough(), prog.passThrough()
			target := opts.Target().Describe()
			opts.Started = func(what []string) { prog.watching(target, what) }

			// The first Ctrl-C (or SIGTERM) ends the window early and
			// reports on what was watched; the second aborts.
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			interrupt := make(chan struct{})
			opts.Interrupt = interrupt
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				for n := 0; ; n++ {
					select {
					case <-sigs:
					case <-ctx.Done():
						return
					}
					if n == 0 {
						close(interrupt)
						continue
					}
					cancel()
					return
				}
			}()
			o, err := diagnose.Watch(ctx, opts)
			prog.analyzing()
			if err != nil {
				prog.done()
				return err
			}
			// A failure to write where asked loses nothing: the report
			// and the observation are kept elsewhere, and said where.
			var saved string
			var saveErr error
			if save != "" {
				saved, saveErr = saveOrKeep(o, save, overwrite)
			}
			r := diagnosis.Analyze(o, diagnosis.DefaultOptions())
			prog.done()
			writeErr := rep.write(cmd.OutOrStdout(), r)
			if saved != "" {
				fmt.Fprintf(stderr, "perfhound: observation saved to %s (perfhound analyze %s; perfhound serve %s)\n", saved, saved, saved)
			}
			return errors.Join(saveErr, writeErr)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&pid, "pid", "p", 0, "watch this process and its threads (and children it starts)")
	fl.StringVarP(&url, "url", "u", "", "watch the Go service serving net/http/pprof at this base URL, e.g. http://127.0.0.1:6060")
	fl.DurationVarP(&duration, "duration", "d", duration, "how long to watch (a command: at most)")
	fl.DurationVar(&interval, "interval", interval, "how often to read the /proc, PSI and runtime metrics")
	fl.BoolVar(&noEBPF, "no-ebpf", false, "do not use eBPF even where allowed")
	fl.IntVar(&frequency, "frequency", frequency, "on-CPU sampling frequency of eBPF, in Hz")
	fl.StringVar(&save, "save", "", "save the observation to this directory, new or empty (for perfhound analyze, compare, serve)")
	fl.BoolVar(&overwrite, "overwrite", false, "let --save replace an observation saved there before")
	fl.BoolVarP(&quiet, "quiet", "q", false, "draw no progress line on a terminal")
	rep.add(cmd)
	cmd.MarkFlagsMutuallyExclusive("pid", "url")
	return cmd
}

func newAnalyze() *cobra.Command {
	var (
		rep reportFlags
		mem memoryFlag
	)
	cmd := &cobra.Command{
		Use:   "analyze [flags] DIR",
		Short: "Diagnose a saved observation again, offline",
		Long: `Read an observation saved by 'perfhound diagnose --save DIR' and report on
it as diagnose did: the analysis is a function of the observation alone,
so the verdict is the same.`,
		Example: `  perfhound analyze obs/
  perfhound analyze -f json obs/ | jq .verdict.class
  perfhound analyze -f html -o report.html obs/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("analyze needs one observation directory, got %d argument(s)", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rep.check(); err != nil {
				return err
			}
			budget, restore, err := mem.budget()
			if err != nil {
				return err
			}
			defer restore()
			o, err := loadObservation(args[0], budget)
			if err != nil {
				return mem.explain(err)
			}
			return rep.write(cmd.OutOrStdout(), diagnosis.Analyze(o, diagnosis.DefaultOptions()))
		},
	}
	rep.add(cmd)
	mem.add(cmd)
	return cmd
}

// terminalWidth is w's width in columns, 100 when it cannot tell.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 10 {
			return int(ws.Col)
		}
	}
	return 100
}
