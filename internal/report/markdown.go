package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/perfhound/perfhound/internal/textfmt"
)

// WriteMarkdown writes d as GitHub-flavoured markdown, for a pull request
// comment or a ticket: sections under level-4 headings or folded in
// <details>, blocks parted by blank lines. Text is escaped with
// textfmt.MarkdownText, code spans with textfmt.MarkdownCode, so that
// names from input can make no link, HTML, emphasis or table cell.
func WriteMarkdown(w io.Writer, d *Doc) error {
	m := &markdown{w: &errWriter{w: w}}
	m.blocks(d.Lead)
	for _, s := range d.Sections {
		if !shows(s.Only, MarkdownOnly) {
			continue
		}
		if s.Fold != nil {
			m.printf("\n<details><summary>%s</summary>\n\n", m.text(s.Fold))
		} else {
			m.printf("\n#### %s\n\n", s.Title)
		}
		m.blocks(s.Blocks)
		if s.Fold != nil {
			m.printf("\n</details>\n")
		}
	}
	return m.w.err
}

type markdown struct{ w *errWriter }

func (m *markdown) printf(format string, args ...any) { fmt.Fprintf(m.w, format, args...) }

// text is in with its markup, escaped, without the spans for a terminal
// alone. An empty span writes nothing, markup included.
func (m *markdown) text(in Inline) string {
	var b strings.Builder
	for _, s := range in {
		if !shows(s.Only, MarkdownOnly) || s.Text == "" {
			continue
		}
		text := s.Text
		if !s.Lit {
			text = textfmt.MarkdownText(text)
		}
		switch s.Mark {
		case MarkCode:
			text = "`" + textfmt.MarkdownCode(s.Text) + "`"
		case MarkEm:
			text = "_" + text + "_"
		case MarkStrong:
			text = "**" + text + "**"
		}
		b.WriteString(text)
	}
	return b.String()
}

// blocks writes bs, a blank line between one and the next.
func (m *markdown) blocks(bs []Block) {
	first := true
	for _, b := range bs {
		if !shows(b.medium(), MarkdownOnly) {
			continue
		}
		if !first {
			m.printf("\n")
		}
		first = false
		switch b := b.(type) {
		case *Title:
			m.printf("### %s\n", m.text(b.Text))
		case *Para:
			s := m.text(b.Text)
			if b.Sentence {
				s = capitalizeFirst(s) + "."
			}
			m.printf("%s\n", s)
		case *List:
			m.list(b)
		case *Table:
			m.table(b)
		}
	}
}

func (m *markdown) list(l *List) {
	for _, it := range l.Items {
		if !shows(it.Only, MarkdownOnly) {
			continue
		}
		s := m.text(it.Text)
		if label := m.text(it.Label); label != "" {
			s = label + ": " + s
		}
		if it.Source != "" {
			s += " (`" + textfmt.MarkdownCode(it.Source) + "`)"
		}
		m.printf("- %s\n", s)
	}
}

func (m *markdown) table(t *Table) {
	var cols []int
	for i, c := range t.Columns {
		if shows(c.Only, MarkdownOnly) {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		return // no column for markdown
	}
	var head, align, row strings.Builder
	for _, i := range cols {
		c := t.Columns[i]
		h := c.Header
		if c.MarkdownHeader != "" {
			h = c.MarkdownHeader
		}
		head.WriteString(cell(h, h == ""))
		if c.Right {
			align.WriteString("--:|")
		} else {
			align.WriteString("---|")
		}
	}
	m.printf("|%s\n|%s\n", head.String(), align.String())
	for _, r := range t.Rows {
		row.Reset()
		for _, i := range cols {
			if i < len(r.Cells) && r.Cells[i] != nil {
				row.WriteString(cell(m.text(r.Cells[i]), false))
			} else {
				row.WriteString(cell("", true))
			}
		}
		m.printf("|%s\n", row.String())
	}
}

// cell is a table cell and the pipe after it: " s |", or " |" for a
// blank.
func cell(s string, blank bool) string {
	if blank {
		return " |"
	}
	return " " + s + " |"
}

func capitalizeFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}
