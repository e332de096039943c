package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestProgressLine(t *testing.T) {
	p := &progress{width: 100, window: 10 * time.Second}
	p.stage = "starting the collectors"
	if l := p.line(time.Now()); !strings.Contains(l, "starting the collectors") || strings.Contains(l, "left") {
		t.Errorf("before the window: %q", l)
	}
	start := time.Now()
	p.watching("process 42", []string{"eBPF oncpu,offcpu", "pprof"})
	p.start = start
	l := p.line(start.Add(4 * time.Second))
	for _, want := range []string{"40%", "6s left", "watching process 42: eBPF oncpu,offcpu; pprof"} {
		if !strings.Contains(l, want) {
			t.Errorf("line %q lacks %q", l, want)
		}
	}
	p.what = strings.Repeat("x", 200)
	if l := p.line(start.Add(time.Second)); utf8.RuneCountInString(l) > 100 || !strings.HasSuffix(l, "…") {
		t.Errorf("line not cut to 100 runes: %d: %q", utf8.RuneCountInString(l), l)
	}
	if l := p.line(start.Add(time.Minute)); !strings.Contains(l, "100%") || !strings.Contains(l, "0s left") {
		t.Errorf("past the window: %q", l)
	}
}

// TestProgressOffScreen checks that nothing is drawn when the output is
// not a terminal.
func TestProgressOffScreen(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, isTerminal(&b), time.Second, 80)
	p.watching("the host", nil)
	time.Sleep(300 * time.Millisecond)
	p.analyzing()
	p.done()
	if b.Len() != 0 {
		t.Errorf("progress drawn on a buffer: %q", b.String())
	}
}

// TestProgressPassThrough checks that a command's output is written above
// the status line, whole lines at a time, and its unfinished last line at
// the end.
func TestProgressPassThrough(t *testing.T) {
	var b syncBuffer
	p := newProgress(&b, true, time.Second, 80)
	w := p.passThrough()
	io.WriteString(w, "first line\nsecond ")
	io.WriteString(w, "line\nno newline")
	p.done()
	out := b.String()
	for _, want := range []string{"first line\n", "second line\n", "no newline\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	if strings.Index(out, "no newline") < strings.LastIndex(out, "\x1b[2K") {
		t.Errorf("the unfinished line was cleared by the status line:\n%q", out)
	}
}
