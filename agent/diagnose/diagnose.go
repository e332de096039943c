// Package diagnose watches one target for one window, as `perfhound
// diagnose` does: the host, a process, a command run to its end, or a Go
// service's pprof endpoint. It turns what the user names into what
// agent/observe watches, and bad targets into clear errors: a PID that
// does not exist or exits during the window, a command that cannot start
// or exits at once, a URL that does not answer or is not pprof, a window
// that yields nothing of the target (ErrNoData).
package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/perfhound/perfhound/agent/collect"
	"github.com/perfhound/perfhound/agent/identity"
	"github.com/perfhound/perfhound/agent/observe"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// Errors for targets that cannot be diagnosed, to test with errors.Is.
var (
	ErrNoProcess     = observe.ErrNoProcess
	ErrProcessExited = errors.New("the process exited during the window")
	ErrCommand       = errors.New("the command could not be watched")
	// ErrNoData is a window that yielded nothing of the target (every
	// collector of it failed): there is nothing to judge.
	ErrNoData = errors.New("nothing of the target was collected")
)

// ErrInterval is a sampling interval below its floor (MinInterval).
var ErrInterval = errors.New("sampling interval too short")

// The floors of Options.Interval, so that reading /proc, /sys and PSI
// costs about 1% of one core. In place (BenchmarkRun in agent/collect,
// docs/benchmarks.md), one reading of every sampler costs about 1.9 ms of
// CPU for the host and 7.5 ms for a process with TCP sockets (most of it
// the kernel walking its TCP tables for process.tcp's sock_diag dump);
// divided by 1% and rounded to a quarter second, that is 250 ms and
// 750 ms. Neither grows with the host's processes: those are read only at
// the window's start and end.
const (
	MinHostInterval    = 250 * time.Millisecond
	MinProcessInterval = 750 * time.Millisecond
)

// MinInterval is the shortest sampling interval for the target opts
// names: a process (a PID, a command, or a URL, whose local process is
// watched too) or the host.
func MinInterval(opts Options) time.Duration {
	if opts.PID != 0 || len(opts.Command) > 0 || opts.URL != "" {
		return MinProcessInterval
	}
	return MinHostInterval
}

// CheckInterval refuses an interval below the floor for its target, with
// ErrInterval; 0 means the default (1 s).
func CheckInterval(opts Options) error {
	min := MinInterval(opts)
	if opts.Interval == 0 || opts.Interval >= min {
		return nil
	}
	what, cost := "the host", "about 2 ms"
	if min == MinProcessInterval {
		what, cost = "a process", "up to 8 ms"
	}
	return fmt.Errorf("diagnose: %w: %v for %s, at least %v: each reading of /proc, /sys and PSI costs %s of CPU, and perfhound keeps its readings to about 1%% of one core", ErrInterval, opts.Interval, what, min, cost)
}

// MinCommandRun is how long a command must run to be worth a verdict: a
// command that exits sooner ran for less than one metric interval.
const MinCommandRun = 500 * time.Millisecond

// Options say what to diagnose and how.
type Options struct {
	// The target: a PID, a command, a URL, or none of them for the host.
	PID     int
	Command []string
	URL     string
	// Duration is the window (a command's longest); Interval the metric
	// sampling interval.
	Duration, Interval time.Duration
	// EBPF turns the eBPF collectors on where the host allows them, at
	// Frequency Hz (default 99).
	EBPF      bool
	Frequency int
	// Stdout and Stderr receive a command's output (default: discarded).
	Stdout, Stderr io.Writer
	// Started is called as the window starts with what is collected,
	// for a progress display.
	Started func(collecting []string)
	// Interrupt, when closed, ends the window early (the user pressed
	// Ctrl-C): the observation covers the window so far, and says so. A
	// command is sent SIGINT.
	Interrupt <-chan struct{}
	Env       collect.Env
}

// Target is the target as its observation names it (a command's PID is
// known once it runs).
func (o Options) Target() observation.Target {
	switch {
	case len(o.Command) > 0:
		return observation.Target{Kind: observation.TargetCommand, Command: o.Command}
	case o.PID != 0:
		return observation.Target{Kind: observation.TargetProcess, PID: o.PID}
	case o.URL != "":
		return observation.Target{Kind: observation.TargetURL, URL: o.URL}
	}
	return observation.Target{Kind: observation.TargetHost}
}

// Watch watches the target for one window and returns its observation.
func Watch(ctx context.Context, opts Options) (*observation.Observation, error) {
	if opts.Duration <= 0 {
		return nil, errors.New("diagnose: the window needs a positive duration")
	}
	set := 0
	for _, b := range []bool{opts.PID != 0, len(opts.Command) > 0, opts.URL != ""} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("diagnose: name one target: a PID, a command or a URL")
	}
	if err := CheckInterval(opts); err != nil {
		return nil, err
	}
	// Stacks by .eh_frame tables where a process's code has them: its
	// one window is too short to learn a host's processes, so it matters
	// for a PID or a command, and costs a host's diagnose nothing.
	wopts := observe.Options{
		Interval: opts.Interval, EBPF: opts.EBPF, Frequency: opts.Frequency,
		NativeUnwind: true, Env: opts.Env, Stop: opts.Interrupt,
	}
	var o *observation.Observation
	var err error
	switch {
	case len(opts.Command) > 0:
		o, err = watchCommand(ctx, opts, wopts)
	case opts.PID != 0:
		o, err = watchPID(ctx, opts, wopts)
	case opts.URL != "":
		o, err = watchURL(ctx, opts, wopts)
	default:
		o, err = watch(ctx, opts, wopts, nil)
		if o != nil {
			noteInterrupt(o, opts)
		}
	}
	if err == nil && o != nil && !o.HasTargetData() {
		return o, noData(o)
	}
	return o, err
}

// watch starts the watcher, calls attached (a command's gate), tells
// opts.Started what is collected, and watches one window: everything is
// attached before the target is let go and the window begins.
func watch(ctx context.Context, opts Options, wopts observe.Options, attached func()) (*observation.Observation, error) {
	w, err := observe.Start(ctx, wopts)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if attached != nil {
		attached()
	}
	if opts.Started != nil {
		opts.Started(w.Collecting())
	}
	return w.Window(ctx, opts.Duration)
}

// noData is the error of a window that yielded nothing of its target,
// naming each signal that failed and why (for a Go service, each
// endpoint). The host's series of the window are not the target's: a
// verdict on them would judge the machine around it, perfhound's own
// fetching included.
func noData(o *observation.Observation) error {
	var b strings.Builder
	for _, m := range o.Missing {
		fmt.Fprintf(&b, "\n  %s: %s", m.Signal, m.Reason)
	}
	return fmt.Errorf("diagnose: %w from %s in the window, so there is nothing to judge; what failed:%s", ErrNoData, o.Meta.Target.Describe(), b.String())
}

// noteInterrupt says in the observation that the user cut the window
// short, when they did.
func noteInterrupt(o *observation.Observation, opts Options) {
	select {
	case <-opts.Interrupt:
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalWindow,
			Reason: fmt.Sprintf("cut short by an interrupt after %.1fs of the %v asked for", o.Meta.Duration.Seconds(), opts.Duration)})
	default:
	}
}

// either is a channel closed when a or b is (b may be nil), until done
// closes.
func either(a, b, done <-chan struct{}) <-chan struct{} {
	if b == nil {
		return a
	}
	c := make(chan struct{})
	go func() {
		select {
		case <-a:
		case <-b:
		case <-done:
			return
		}
		close(c)
	}()
	return c
}

// watchPID watches a running process and fails if it exits during the
// window: a verdict on part of a window would read as a verdict on all of
// it.
func watchPID(ctx context.Context, opts Options, wopts observe.Options) (*observation.Observation, error) {
	if err := checkPID(opts.Env, opts.PID); err != nil {
		return nil, err
	}
	wopts.PID = opts.PID
	exited := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	wopts.Stop = either(exited, opts.Interrupt, stop)
	go func() {
		if awaitExit(opts.Env, opts.PID, stop) {
			close(exited)
		}
	}()
	var start time.Time
	o, err := watch(ctx, opts, wopts, func() { start = time.Now() })
	if err != nil {
		return o, err
	}
	select {
	case <-exited:
		return o, fmt.Errorf("diagnose: process %d exited %.1fs into the %v window: %w (to watch a program to its end, run it with perfhound diagnose -- CMD)",
			opts.PID, time.Since(start).Seconds(), opts.Duration, ErrProcessExited)
	default:
	}
	noteInterrupt(o, opts)
	return o, nil
}

// checkPID refuses what cannot be watched as a process: not a PID, no
// such process, a zombie, a thread of another process (the eBPF
// collectors follow processes by their thread group).
func checkPID(env collect.Env, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("diagnose: %d is not a PID", pid)
	}
	procfs := env.ProcDir()
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/status", procfs, pid))
	if err != nil {
		return fmt.Errorf("diagnose: no process %d: %w", pid, ErrNoProcess)
	}
	var tgid int
	var state string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Tgid":
			tgid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "State":
			state = strings.TrimSpace(v)
		}
	}
	switch {
	case strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X"):
		return fmt.Errorf("diagnose: process %d has already exited (%s): %w", pid, state, ErrProcessExited)
	case tgid != 0 && tgid != pid:
		return fmt.Errorf("diagnose: %d is a thread of process %d: watch --pid %d", pid, tgid, tgid)
	}
	return nil
}

// awaitExit polls the process until it is gone (true) or stop closes
// (false). A zombie has exited: its parent has not reaped it yet.
func awaitExit(env collect.Env, pid int, stop <-chan struct{}) bool {
	procfs := env.ProcDir()
	path := fmt.Sprintf("%s/%d/stat", procfs, pid)
	var first string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return true
		}
		state, start := statStateStart(b)
		if first == "" {
			first = start
		}
		if state == 'Z' || state == 'X' || start != first {
			return true
		}
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
	}
}

// statStateStart returns the state (field 3) and start time (field 22) of
// a /proc/PID/stat, counting from the last ')' since the name may hold
// one.
func statStateStart(b []byte) (byte, string) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, ""
	}
	return f[0][0], f[19]
}

// watchCommand starts the command held at a gate, so that the eBPF
// programs are attached and following its PID before it runs its first
// instruction: a shell waits to read from a pipe, then execs the
// command in its own place (same PID). The window ends when the command
// exits or at the duration, whichever is first; the command is then
// killed if it still runs.
func watchCommand(ctx context.Context, opts Options, wopts observe.Options) (*observation.Observation, error) {
	if _, err := exec.LookPath(opts.Command[0]); err != nil {
		return nil, fmt.Errorf("diagnose: %w: %w", ErrCommand, err)
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer gateW.Close()
	// The gate: the command runs only when perfhound releases it; if
	// perfhound dies first, the pipe reads EOF and the shell exits.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `read -r _ <&3 || exit 125; exec 3<&-; exec "$@"`, "perfhound-gate"}, opts.Command...)...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
	cmd.ExtraFiles = []*os.File{gateR}
	// Its own process group, so that the kill at the end reaches the
	// command's children too; but not when stdin is a terminal: a
	// background group reading the terminal is stopped (SIGTTIN), and in
	// the foreground group Ctrl-C reaches the command as it would without
	// perfhound.
	ownGroup := !term.IsTerminal(int(os.Stdin.Fd()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	// A child the command leaves running may hold its output open: once
	// the command has exited, reaping it waits that long for the output,
	// no longer.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		gateR.Close()
		return nil, fmt.Errorf("diagnose: %w: %w", ErrCommand, err)
	}
	gateR.Close()
	pid := cmd.Process.Pid
	// exited closes when the command has exited, before it is reaped: the
	// window's last reading then finds it a zombie, whose final counters
	// (CPU time, faults, I/O) the kernel keeps until its parent waits for
	// it; reaped at once, a command's last second (and all of one shorter
	// than the sampling interval) would be lost. It is reaped after the
	// window (reap).
	exited := make(chan struct{})
	go func() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		close(exited)
	}()
	var waitErr error
	var reaped bool
	reap := func() {
		if !reaped {
			waitErr, reaped = cmd.Wait(), true
		}
	}
	defer func() {
		// The command's group goes too, children it left behind included.
		if ownGroup {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		select {
		case <-exited:
		default:
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		reap()
	}()

	wopts.PID = pid
	done := make(chan struct{})
	defer close(done)
	wopts.Stop = either(exited, opts.Interrupt, done)
	if opts.Interrupt != nil {
		go func() {
			select {
			case <-opts.Interrupt:
				// In its own group the command did not get the
				// terminal's SIGINT: pass it on, so that it can clean
				// up before the kill at the end.
				if ownGroup {
					syscall.Kill(-pid, syscall.SIGINT)
				}
			case <-exited:
			}
		}()
	}
	var runStart time.Time
	o, err := watch(ctx, opts, wopts, func() {
		// Everything is attached: let the command run.
		runStart = time.Now()
		gateW.Write([]byte("go\n"))
		gateW.Close()
	})
	if err != nil {
		return o, err
	}
	o.Meta.Target = observation.Target{Kind: observation.TargetCommand, PID: pid, Command: opts.Command}
	select {
	case <-exited:
		// The command's group goes with it, as at the end (a child left
		// behind would hold the output open while reap waits for it).
		if ownGroup {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		reap()
		ran := time.Since(runStart)
		if o.Meta.Duration > 0 {
			ran = o.Meta.Duration
		}
		if ran < MinCommandRun {
			return nil, fmt.Errorf("diagnose: %w: %s exited after %v (%s): too soon to watch; diagnose a longer run",
				ErrCommand, opts.Command[0], ran.Round(time.Millisecond), exitText(waitErr))
		}
		if waitErr != nil {
			o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalCommand, Reason: "exited with " + exitText(waitErr)})
		}
	case <-opts.Interrupt: // nil without one: never ready
	default:
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalCommand,
			Reason: fmt.Sprintf("still running at the end of the %v window, then killed: the verdict covers the window only", opts.Duration)})
	}
	noteInterrupt(o, opts)
	return o, nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return "status " + strconv.Itoa(ee.ExitCode())
		}
		return ee.String()
	}
	return err.Error()
}

// watchURL watches a Go service through its pprof endpoint and, when it
// listens on this host, its process too (eBPF and /proc), found by the
// listening socket.
func watchURL(ctx context.Context, opts Options, wopts observe.Options) (*observation.Observation, error) {
	wopts.URL = opts.URL
	pid, ok := identity.ListenerPID(ctx, opts.URL)
	var why string
	switch {
	case !ok || pid == os.Getpid():
		why = "the service does not listen on this host (or its process could not be found), so only its pprof endpoint was watched"
	case !servesItself(ctx, opts.URL, opts.Env, pid):
		// A proxy, an ssh tunnel, a port-forward: the listener is not
		// the Go program the endpoint describes.
		why = fmt.Sprintf("process %d listens on the URL's port but is not the program serving pprof there (a proxy or a port-forward?), so only the endpoint was watched", pid)
	default:
		wopts.PID = pid
	}
	if wopts.PID == 0 && wopts.EBPF {
		// eBPF would watch this host, not the service.
		wopts.EBPF, wopts.NoEBPF = false, why
	}
	o, err := watch(ctx, opts, wopts, nil)
	if err != nil {
		return o, err
	}
	noteInterrupt(o, opts)
	o.Meta.Target.PID = wopts.PID
	if wopts.PID == 0 && !opts.EBPF {
		// Not requested, and it could not have watched the service.
		o.Missing = append(o.Missing, observation.Missing{Signal: observation.SignalEBPF, Reason: why})
	}
	return o, nil
}
