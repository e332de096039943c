package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// Width is the width, in runes, a terminal's prose is wrapped to.
const Width = 110

// ANSI escape codes of the tones, in the order they combine.
var toneCodes = []struct {
	tone Tone
	code string
}{{Bold, "\x1b[1m"}, {Dim, "\x1b[2m"}, {Red, "\x1b[31m"}, {Green, "\x1b[32m"}, {Yellow, "\x1b[33m"}}

const reset = "\x1b[0m"

// WriteText writes d for a terminal: sections under bold titles, prose
// wrapped to Width, tables aligned in columns two spaces apart with their
// header dimmed, in colour when color is set. Text is escaped with
// textfmt.Printable, so that names from input cannot act on the terminal.
func WriteText(w io.Writer, d *Doc, color bool) error {
	t := &terminal{w: &errWriter{w: w}, color: color}
	t.blocks(d.Lead)
	for _, s := range d.Sections {
		if !shows(s.Only, TerminalOnly) {
			continue
		}
		t.printf("\n%s", t.paint(Bold, textfmt.Printable(s.Title)))
		if s.Note != "" {
			t.printf(" %s", t.paint(Dim, "("+textfmt.Printable(s.Note)+")"))
		}
		t.printf("\n")
		t.blocks(s.Blocks)
	}
	return t.w.err
}

type terminal struct {
	w     *errWriter
	color bool
}

func (t *terminal) printf(format string, args ...any) { fmt.Fprintf(t.w, format, args...) }

// paint puts s between tone's codes and a reset, in colour and when s is
// not empty.
func (t *terminal) paint(tone Tone, s string) string {
	if !t.color || s == "" || tone == 0 {
		return s
	}
	var b strings.Builder
	for _, c := range toneCodes {
		if tone&c.tone != 0 {
			b.WriteString(c.code)
		}
	}
	return b.String() + s + reset
}

// text is in escaped and painted, without the spans for markdown alone.
func (t *terminal) text(in Inline) string {
	var b strings.Builder
	for _, s := range in {
		if !shows(s.Only, TerminalOnly) {
			continue
		}
		text := s.Text
		if !s.Lit {
			text = textfmt.Printable(text)
		}
		b.WriteString(t.paint(s.Tone, text))
	}
	return b.String()
}

func (t *terminal) blocks(bs []Block) {
	for _, b := range bs {
		if !shows(b.medium(), TerminalOnly) {
			continue
		}
		switch b := b.(type) {
		case blank:
			t.printf("\n")
		case *Title:
			t.printf("%s\n", t.text(b.Text))
		case *Para:
			t.para(textfmt.Printable(b.Prefix), t.text(b.Text), b.Unwrapped)
		case *List:
			t.list(b)
		case *Table:
			t.table(b)
		}
	}
}

// para writes text after first, wrapped to Width with its lines after the
// first indented as wide as first (at least 20 runes of text a line,
// however long first is; first's width counts every rune, colour codes
// too), or on one line when unwrapped.
func (t *terminal) para(first, text string, unwrapped bool) {
	if unwrapped {
		t.printf("%s%s\n", first, text)
		return
	}
	indent := strings.Repeat(" ", utf8.RuneCountInString(first))
	for i, l := range textfmt.Wrap(text, max(20, Width-len(indent))) {
		if i == 0 {
			t.printf("%s%s\n", first, l)
		} else {
			t.printf("%s%s\n", indent, l)
		}
	}
}

func (t *terminal) list(l *List) {
	width := 0
	for _, it := range l.Items {
		if shows(it.Only, TerminalOnly) {
			width = max(width, utf8.RuneCountInString(t.text(it.Label)))
		}
	}
	for _, it := range l.Items {
		if !shows(it.Only, TerminalOnly) {
			continue
		}
		first, text := "  - ", t.text(it.Text)
		label := t.text(it.Label)
		switch {
		case l.Labels == LabelColumn:
			first += fmt.Sprintf("%-*s", width+2, label)
		case label == "":
		case l.Labels == LabelHanging:
			first += label + ": "
		default:
			text = label + ": " + text
		}
		if it.Source != "" {
			text += "  [" + textfmt.Printable(it.Source) + "]"
		}
		t.para(first, text, l.Unwrapped)
	}
}

// table aligns the rows with a tabwriter, then writes the header and
// header rows dimmed (the colour goes on after alignment, so that it does
// not count as width) and each row's Beneath cells under it.
func (t *terminal) table(tb *Table) {
	var cols, beneath []int
	for i, c := range tb.Columns {
		if !shows(c.Only, TerminalOnly) {
			continue
		}
		if c.Beneath {
			beneath = append(beneath, i)
		} else {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		return // no column for a terminal
	}
	line := func(cells func(i int) string, sub bool) string {
		var out []string
		for _, i := range cols {
			c := tb.Columns[i]
			s := cells(i)
			if w := c.Width; w > 0 {
				s = fmt.Sprintf("%*s", w, s)
			}
			out = append(out, s)
		}
		if c := tb.Columns[cols[len(cols)-1]]; c.Optional && out[len(out)-1] == "" {
			out = out[:len(out)-1]
		}
		if tb.Numbers && len(out) > 1 {
			out = append(out[:len(out)-1], "", out[len(out)-1])
		}
		indent := tb.Indent
		if sub {
			indent += 2
		}
		out[0] = strings.Repeat(" ", indent) + out[0]
		return strings.Join(out, "\t") + "\n"
	}
	var b bytes.Buffer
	flags := uint(0)
	if tb.Numbers {
		flags = tabwriter.AlignRight
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', flags)
	header := false
	for _, i := range cols {
		header = header || tb.Columns[i].Header != ""
	}
	if header {
		io.WriteString(tw, line(func(i int) string { return textfmt.Printable(tb.Columns[i].Header) }, false))
	}
	for _, r := range tb.Rows {
		io.WriteString(tw, line(func(i int) string { return t.cell(r, i) }, r.Sub))
	}
	tw.Flush()
	lines := strings.SplitAfter(b.String(), "\n")
	if header {
		t.printf("%s\n", t.paint(Dim, strings.TrimSuffix(lines[0], "\n")))
		lines = lines[1:]
	}
	for i, r := range tb.Rows {
		if r.Head {
			t.printf("%s\n", t.paint(Dim, strings.TrimSuffix(lines[i], "\n")))
		} else {
			t.printf("%s", lines[i])
		}
		for _, c := range beneath {
			if s := t.cell(r, c); s != "" {
				t.para(strings.Repeat(" ", tb.Indent+6), s, false)
			}
		}
	}
}

func (t *terminal) cell(r Row, i int) string {
	if i < len(r.Cells) {
		return t.text(r.Cells[i])
	}
	return ""
}

// errWriter keeps the first error of the writer under it and drops what
// is written after, so that a writer can write freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
