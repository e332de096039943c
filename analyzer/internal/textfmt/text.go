package textfmt

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// OrDash is s, or "-" for an empty cell.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ShortName drops the import path's directories from a Go function name:
// "crypto/internal/fips140/sha256.blockSHANI" becomes "sha256.blockSHANI",
// "github.com/x/y.F[...]" becomes "y.F[...]". File paths and library
// names ("/usr/lib/x.so", "[libc.so.6]") stay.
func ShortName(fn string) string {
	if fn == "" || fn[0] == '/' || fn[0] == '[' {
		return fn
	}
	head := fn
	if i := strings.IndexAny(fn, "(["); i >= 0 {
		head = fn[:i]
	}
	if i := strings.LastIndexByte(head, '/'); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// ShortNames applies ShortName to each space-separated word of s, a
// priority's name such as "crypto/sha256.blockSHANI from main.hashLoop".
func ShortNames(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		words[i] = ShortName(w)
	}
	return strings.Join(words, " ")
}

// Wrap breaks text at spaces into lines of at most width runes; a word
// longer than the width gets a line of its own. Empty text is one empty
// line.
func Wrap(text string, width int) []string {
	var lines []string
	var line strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		wn := utf8.RuneCountInString(word)
		if n > 0 && n+1+wn > width {
			lines = append(lines, line.String())
			line.Reset()
			n = 0
		}
		if n > 0 {
			line.WriteByte(' ')
			n++
		}
		line.WriteString(word)
		n += wn
	}
	if n > 0 || len(lines) == 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// Printable escapes what in s would act on a terminal instead of showing:
// control characters (escape sequences that move the cursor, clear the
// screen or set the title; \r that overwrites a line; \n and \t that break
// a table), other invisible characters (bidirectional overrides,
// zero-width spaces) and invalid UTF-8, in Go's notation: "\x1b[2J" shows
// as `\x1b[2J`. Benchmark, file, function and process names come from
// input anyone can write. Text with none of these is returned as it is;
// text with some also has its backslashes and quotes escaped, so that the
// escapes cannot be forged.
func Printable(s string) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !unicode.IsGraphic(r) {
			q := strconv.QuoteToGraphic(s)
			return q[1 : len(q)-1]
		}
		i += n
	}
	return s
}

// MarkdownText escapes text for a markdown table cell or list item: what
// Printable escapes, pipes, and the characters that would start emphasis,
// strikethrough, code, HTML or an entity, or, first, a heading or a quote;
// and the "](" of a link or an image ("[libc.so.6]" stays as it is: with
// no line breaks, no link reference can be defined). Markdown shows a
// backslash-escaped punctuation mark as itself.
func MarkdownText(s string) string {
	s = markdownText.Replace(Printable(s))
	if s != "" && (s[0] == '#' || s[0] == '>') {
		s = `\` + s
	}
	return s
}

var markdownText = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;",
	"](", `\](`, "~", `\~`, "&", "&amp;")

// MarkdownCode escapes text for a code span in a table: what Printable
// escapes, pipes, and backticks, which would end it.
func MarkdownCode(s string) string { return markdownCode.Replace(Printable(s)) }

var markdownCode = strings.NewReplacer("|", `\|`, "`", "'")

// Target says what was watched and for how long from when: "process 42
// (./server -p 80) {env=prod}, 10s from 2025-01-02 03:04:05 UTC", "" when
// nothing is known.
func Target(t observation.Target, start time.Time, d time.Duration) string {
	what := t.Describe()
	if len(t.Labels) > 0 {
		what += " {" + Labels(t.Labels) + "}"
	}
	when := Span(start, d)
	if what == "" && when == "" {
		return ""
	}
	if what == "" {
		what = "target unknown"
	}
	if when != "" {
		what += ", " + when
	}
	return what
}

// Span is how long from when: "10s from 2025-01-02 03:04:05 UTC", either
// part alone, or "" when neither is known.
func Span(start time.Time, d time.Duration) string {
	var when []string
	if d > 0 {
		when = append(when, d.Round(time.Millisecond).String())
	}
	if !start.IsZero() {
		when = append(when, "from "+start.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	return strings.Join(when, " ")
}

// Labels is labels as k=v, sorted by key and joined by ", ".
func Labels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ", ")
}

// Writer keeps the first error of the writer under it and drops what is
// written after, so that a renderer can write freely and check Err once.
type Writer struct {
	w   io.Writer
	err error
}

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (e *Writer) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// Printf writes as fmt.Fprintf does.
func (e *Writer) Printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// Err is the first error the writer under e returned, or nil.
func (e *Writer) Err() error { return e.err }

// ANSI escape codes that Terminal.Paint puts around text.
const (
	Red    = "\x1b[31m"
	Green  = "\x1b[32m"
	Yellow = "\x1b[33m"
	Bold   = "\x1b[1m"
	Dim    = "\x1b[2m"
	Reset  = "\x1b[0m"
)

// Width is the width, in runes, a Terminal wraps prose to.
const Width = 110

// Terminal writes a report for a terminal: sections, prose wrapped to
// Width, and tables, in colour when Color is set.
type Terminal struct {
	*Writer
	Color bool
}

// NewTerminal returns a Terminal writing to w.
func NewTerminal(w io.Writer, color bool) Terminal {
	return Terminal{Writer: NewWriter(w), Color: color}
}

// Paint puts s between code and a reset when t is in colour and s is not
// empty.
func (t Terminal) Paint(code, s string) string {
	if !t.Color || s == "" {
		return s
	}
	return code + s + Reset
}

// Section writes a blank line and a bold title with its note, dimmed, in
// parentheses.
func (t Terminal) Section(title, note string) {
	t.Printf("\n%s", t.Paint(Bold, title))
	if note != "" {
		t.Printf(" %s", t.Paint(Dim, "("+note+")"))
	}
	t.Printf("\n")
}

// Para writes text wrapped to Width, the first line after first and the
// rest after an indent as wide; it wraps to no fewer than 20 runes, however
// long first is. first's width counts every rune, colour codes too.
func (t Terminal) Para(first, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(first))
	for i, l := range Wrap(text, max(20, Width-len(indent))) {
		if i == 0 {
			t.Printf("%s%s\n", first, l)
		} else {
			t.Printf("%s%s\n", indent, l)
		}
	}
}

// Table writes what a tabwriter aligned, its header row dimmed (the colour
// goes on after alignment, so that it does not count as width).
// Columns writes a table aligned in columns two spaces apart, as Table
// does: fill writes its tab-separated rows, the header first. flags are
// tabwriter's (tabwriter.AlignRight, or 0).
func (t Terminal) Columns(flags uint, fill func(w io.Writer)) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', flags)
	fill(tw)
	tw.Flush()
	t.Table(b.String())
}

func (t Terminal) Table(s string) {
	header, rest, _ := strings.Cut(s, "\n")
	t.Printf("%s\n%s", t.Paint(Dim, header), rest)
}
