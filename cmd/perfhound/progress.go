package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// progress draws one status line on a terminal while diagnose watches:
// the stage, what is being collected, a bar and the time left. It draws
// nothing when w is not a terminal, so pipes and files stay clean.
type progress struct {
	w       io.Writer
	on      bool
	width   int
	mu      sync.Mutex
	stage   string
	what    string
	start   time.Time
	window  time.Duration
	stop    chan struct{}
	stopped chan struct{}
	held    []*aboveLine // output passed through, with what is left of its last line
}

func newProgress(w io.Writer, on bool, window time.Duration, width int) *progress {
	p := &progress{w: w, on: on, width: width, window: window, stop: make(chan struct{}), stopped: make(chan struct{})}
	if !on {
		close(p.stopped)
		return p
	}
	p.stage = "starting the collectors (loading eBPF programs)"
	go p.loop()
	return p
}

// watching marks the window's start and what it collects.
func (p *progress) watching(target string, collecting []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.what, p.start = "watching "+target, strings.Join(collecting, "; "), time.Now()
}

// analyzing marks the end of the window.
func (p *progress) analyzing() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.what, p.start = "reading the collectors and analyzing", "", time.Time{}
}

// passThrough returns a writer for a watched command's output: whole
// lines are written above the status line, which is then drawn again, so
// that the two do not overwrite each other. What is left of a last line
// without a newline is written by done.
func (p *progress) passThrough() io.Writer {
	if !p.on {
		return p.w
	}
	return &aboveLine{p: p}
}

type aboveLine struct {
	p       *progress
	partial []byte
}

func (a *aboveLine) Write(b []byte) (int, error) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.partial = append(a.partial, b...)
	i := bytes.LastIndexByte(a.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	fmt.Fprintf(a.p.w, "\r\x1b[2K%s%s", a.partial[:i+1], a.p.line(time.Now()))
	a.partial = append(a.partial[:0], a.partial[i+1:]...)
	if len(a.p.held) == 0 {
		a.p.held = append(a.p.held, a)
	}
	return len(b), nil
}

// done clears the line and stops drawing.
func (p *progress) done() {
	if !p.on {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.stopped
}

func (p *progress) loop() {
	defer close(p.stopped)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		p.draw()
		select {
		case <-p.stop:
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r\x1b[2K")
			for _, a := range p.held {
				if len(a.partial) > 0 {
					fmt.Fprintf(p.w, "%s\n", a.partial)
					a.partial = a.partial[:0]
				}
			}
			p.mu.Unlock()
			return
		case <-tick.C:
		}
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	line := p.line(time.Now())
	p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\x1b[2K%s", line)
}

// line is the status line at now, cut to the terminal's width.
func (p *progress) line(now time.Time) string {
	var b strings.Builder
	if !p.start.IsZero() && p.window > 0 {
		done := min(now.Sub(p.start).Seconds()/p.window.Seconds(), 1)
		const cells = 12
		full := int(done * cells)
		left := max(p.window-now.Sub(p.start), 0).Round(time.Second)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% %v left  ", strings.Repeat("█", full), strings.Repeat("░", cells-full), 100*done, left)
	} else {
		spin := `|/-\`
		i := int(now.UnixMilli()/200) % len(spin)
		fmt.Fprintf(&b, "%c ", spin[i])
	}
	b.WriteString(p.stage)
	if p.what != "" {
		b.WriteString(": " + p.what)
	}
	s := b.String()
	if utf8.RuneCountInString(s) > p.width {
		r := []rune(s)
		s = string(r[:p.width-1]) + "…"
	}
	return s
}
