package report

// Doc is a report: its lead (the answer, and what was compared), then its
// sections.
type Doc struct {
	Lead     []Block
	Sections []Section
}

// Section is a titled part of a report. An empty section is still
// written: a report leaves out what it has nothing for.
type Section struct {
	// Title is the report's own words. Markdown writes it as it is, so
	// text from input goes only into the title of a TerminalOnly
	// section, which a terminal escapes as any text.
	Title string
	// Note glosses the title on a terminal, dimmed in parentheses after
	// it. Markdown has no room beside a heading: a report that wants the
	// gloss there too says it in a MarkdownOnly paragraph.
	Note string
	// Fold, when set, folds the section in markdown in a <details>
	// element with Fold as its summary in place of the heading: what a
	// pull request comment keeps out of the way.
	Fold Inline
	// Blocks follow one another on a terminal; in markdown a blank line
	// parts them.
	Blocks []Block
	// Only gives the section to one writer alone, its blocks still shown
	// by their own Only: what a terminal shows of a host's processes
	// beyond the table markdown has too.
	Only Medium
}

// Medium says which writer shows a part of a report.
type Medium uint8

const (
	Both         Medium = iota
	TerminalOnly        // WriteText alone
	MarkdownOnly        // WriteMarkdown alone
)

// Block is a part of a section: *Title, *Para, *List, *Table or Blank.
type Block interface{ medium() Medium }

// Title is a report's headline: markdown's level-3 heading, a line of its
// own on a terminal.
type Title struct {
	Text Inline
	Only Medium
}

// Para is a paragraph.
type Para struct {
	Text Inline
	// Prefix starts the paragraph's first line on a terminal; its lines
	// after are indented as wide.
	Prefix string
	// Unwrapped keeps the paragraph on one line on a terminal however
	// long it is, where a line is a record (a CI log's finding).
	Unwrapped bool
	// Sentence makes the text a sentence in markdown, its first letter
	// capital and a full stop at its end; a terminal shows it as it is,
	// a remark after a title.
	Sentence bool
	Only     Medium
}

// List is a bulleted list.
type List struct {
	Items []Item
	// Labels lays out the items' labels on a terminal; markdown writes
	// "label: text".
	Labels    LabelLayout
	Unwrapped bool // as Para's
	Only      Medium
}

// Item is a list item: an optional label, its text, and the signal it
// came from, if any.
type Item struct {
	Label  Inline
	Text   Inline
	Source string // a terminal's "  [source]", markdown's " (`source`)"
	Only   Medium
}

// LabelLayout is how a terminal lays out list items' labels.
type LabelLayout uint8

const (
	// LabelInline writes "label: text", wrapped as one.
	LabelInline LabelLayout = iota
	// LabelHanging writes "label: text" with the text's lines after the
	// first indented past the label.
	LabelHanging
	// LabelColumn writes the labels in a column as wide as the widest
	// and the text after it, its lines after the first indented past it.
	LabelColumn
)

// Table is a table of rows under a header.
type Table struct {
	Columns []Column
	Rows    []Row
	// Indent is how far in a terminal sets the table.
	Indent int
	// Numbers lays a terminal's table out for figures: every column
	// aligned right but the last, a name, which follows after a gap.
	Numbers bool
	Only    Medium
}

// Column is a table's column.
type Column struct {
	// Header heads the column, in the report's own words, written as
	// they are ("#" is no markdown heading in a table); a terminal writes
	// no header line when no column has one.
	Header string
	// MarkdownHeader replaces Header in markdown, where a table may be
	// wider.
	MarkdownHeader string
	// Right aligns the column right in markdown. A terminal aligns by
	// Width and by its table's Numbers.
	Right bool
	// Width right-aligns the column's header and cells in at least Width
	// runes on a terminal.
	Width int
	// Beneath puts each cell on a terminal under its row, wrapped and six
	// in from the table's indent, rather than in a column, so that a long
	// text does not stretch the table. Markdown keeps it a column.
	Beneath bool
	// Only gives the column, header and cells, to one writer alone.
	Only Medium
	// Optional leaves an empty cell of the last column out of its row on
	// a terminal, so that the row ends at the column before, without
	// padding.
	Optional bool
}

// Row is a table's row.
type Row struct {
	// Cells are the row's cells, one for each column. In markdown a nil
	// cell is a blank, "| |"; an empty one is padded as any other,
	// "|  |".
	Cells []Inline
	// Sub marks a row as a part of the row above: a terminal indents its
	// first cell two more.
	Sub bool
	// Head marks a header row within the table: a terminal dims it as it
	// dims the header.
	Head bool
}

// Blank is an empty line on a terminal, which parts the lead's blocks;
// markdown parts every block with one already and leaves it out.
var Blank Block = blank{}

type blank struct{}

func (blank) medium() Medium    { return TerminalOnly }
func (t *Title) medium() Medium { return t.Only }
func (p *Para) medium() Medium  { return p.Only }
func (l *List) medium() Medium  { return l.Only }
func (t *Table) medium() Medium { return t.Only }

// shows reports whether a part for medium m is written to medium to.
func shows(m, to Medium) bool { return m == Both || m == to }

// Inline is text in spans, each with its own markup.
type Inline []Span

// Span is a run of text.
type Span struct {
	Text string
	Mark Mark
	// Lit writes Text as it is, unescaped: for the numbers, units and
	// fixed words a report makes itself and for markdown's own markup
	// ("<br>"), never for text from input.
	Lit  bool
	Tone Tone
	Only Medium
}

// Mark is a span's markdown markup; a terminal shows the text alone.
type Mark uint8

const (
	NoMark     Mark = iota
	MarkCode        // a name: a code span
	MarkEm          // a remark: _emphasis_
	MarkStrong      // what must not be missed: **bold**
)

// Tone is a span's colour on a terminal in colour; markdown has none.
// Tones combine: Bold|Red.
type Tone uint8

const (
	Bold Tone = 1 << iota
	Dim
	Red
	Green
	Yellow
)

// Plain is text, escaped for the medium.
func Plain(s string) Inline { return Inline{{Text: s}} }

// Lit is text written as it is (see Span.Lit).
func Lit(s string) Inline { return Inline{{Text: s, Lit: true}} }

// Code is a name, in a code span in markdown.
func Code(s string) Inline { return Inline{{Text: s, Mark: MarkCode}} }

// Em is a remark, emphasised in markdown.
func Em(s string) Inline { return Inline{{Text: s, Mark: MarkEm}} }

// Cat joins inlines into one.
func Cat(parts ...Inline) Inline {
	var out Inline
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Strong is in with every span in bold in markdown.
func (in Inline) Strong() Inline { return in.each(func(s *Span) { s.Mark = MarkStrong }) }

// Paint is in in tone t on a terminal in colour.
func (in Inline) Paint(t Tone) Inline { return in.each(func(s *Span) { s.Tone = t }) }

// Only is in for medium m alone.
func (in Inline) Only(m Medium) Inline { return in.each(func(s *Span) { s.Only = m }) }

func (in Inline) each(f func(*Span)) Inline {
	out := make(Inline, len(in))
	copy(out, in)
	for i := range out {
		f(&out[i])
	}
	return out
}
