package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// sample exercises every part of the model once.
func sample() *Doc {
	return &Doc{
		Lead: []Block{
			&Title{Text: Cat(Lit("✅ perfhound test: "), Plain("a_b")), Only: MarkdownOnly},
			&Para{Text: Cat(Lit("perfhound test").Paint(Bold), Lit(": "), Lit("OK").Paint(Bold|Green)), Unwrapped: true, Only: TerminalOnly},
			&Para{Prefix: "  base:   ", Text: Plain("dir"), Unwrapped: true, Only: TerminalOnly},
			Blank,
			&Para{Text: Plain(strings.Repeat("word ", 30))},
		},
		Sections: []Section{
			{Title: "Table", Note: "a note", Blocks: []Block{
				&Para{Text: Plain("a note"), Sentence: true, Only: MarkdownOnly},
				&Table{Indent: 2, Columns: []Column{{Header: "name"}, {}, {Header: "n", MarkdownHeader: "number", Right: true, Width: 4},
					{Header: "mark", Optional: true}, {Header: "why", Beneath: true}},
					Rows: []Row{
						{Cells: []Inline{Plain("group").Strong(), nil, Lit("<1").Strong(), Lit(""), nil}},
						{Sub: true, Cells: []Inline{Code("a_b"), Plain("x"), Lit("12"), Lit("new").Paint(Red).Strong(), Plain("because")}},
					}},
			}},
			{Title: "Figures", Fold: Lit("Figures (2)"), Blocks: []Block{
				&Table{Numbers: true, Columns: []Column{{Header: "own", Right: true}, {Header: "cum", Right: true}, {Header: "function"}},
					Rows: []Row{{Cells: []Inline{Lit("1.5%"), Lit("100.0%"), Code("main.f")}}, {Head: true, Cells: []Inline{nil, nil, Lit("[x]")}}}},
			}},
			{Title: "Lists", Blocks: []Block{
				&List{Labels: LabelColumn, Items: []Item{{Label: Plain("cpu").Strong(), Text: Plain("busy"), Source: "host.cpu"}, {Text: Plain("no label")}}},
				&List{Labels: LabelHanging, Items: []Item{{Label: Lit("regression").Paint(Red).Strong(), Text: Plain("slower")},
					{Label: Plain("Base"), Text: Em("the host"), Only: MarkdownOnly}}},
				&List{Items: []Item{{Label: Code("ebpf"), Text: Cat(Plain("not root"), Lit(" — "), Em("no stacks"))}}},
				&Para{Prefix: "  ", Text: Plain("none: nothing to rank"), Sentence: true},
			}},
		},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sample(), false); err != nil {
		t.Fatal(err)
	}
	want := "perfhound test: OK\n" +
		"  base:   dir\n" +
		"\n" +
		strings.TrimSpace(strings.Repeat("word ", 22)) + "\n" +
		strings.TrimSpace(strings.Repeat("word ", 8)) + "\n" +
		"\nTable (a note)\n" +
		"  name         n  mark\n" +
		"  group       <1\n" +
		"    a_b  x    12  new\n" +
		"        because\n" +
		"\nFigures\n" +
		"   own     cum  function\n" +
		"  1.5%  100.0%  main.f\n" +
		"                [x]\n" +
		"\nLists\n" +
		"  - cpu  busy [host.cpu]\n" + // wrapped prose: one space between words
		"  -      no label\n" +
		"  - regression: slower\n" +
		"  - ebpf: not root — no stacks\n" +
		"  none: nothing to rank\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	want := "### ✅ perfhound test: a\\_b\n" +
		"\n" +
		strings.Repeat("word ", 30) + "\n" +
		"\n#### Table\n\n" +
		"A note.\n" +
		"\n" +
		"| name | | number | mark | why |\n" +
		"|---|---|--:|---|---|\n" +
		"| **group** | | **<1** |  | |\n" +
		"| `a_b` | x | 12 | **new** | because |\n" +
		"\n<details><summary>Figures (2)</summary>\n\n" +
		"| own | cum | function |\n" +
		"|--:|--:|---|\n" +
		"| 1.5% | 100.0% | `main.f` |\n" +
		"| | | [x] |\n" +
		"\n</details>\n" +
		"\n#### Lists\n\n" +
		"- **cpu**: busy (`host.cpu`)\n" +
		"- no label\n" +
		"\n" +
		"- **regression**: slower\n" +
		"- Base: _the host_\n" +
		"\n" +
		"- `ebpf`: not root — _no stacks_\n" +
		"\n" +
		"None: nothing to rank.\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// Colour only when asked: tones on spans, bold titles, dimmed notes and
// headers, painted after alignment.
func TestWriteTextColor(t *testing.T) {
	var plain, color bytes.Buffer
	if err := WriteText(&plain, sample(), false); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&color, sample(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("colour without color:\n%q", plain.String())
	}
	for _, want := range []string{
		"\x1b[1mperfhound test\x1b[0m: \x1b[1m\x1b[32mOK\x1b[0m\n",
		"\n\x1b[1mTable\x1b[0m \x1b[2m(a note)\x1b[0m\n",
		"\x1b[2m  name         n  mark\x1b[0m\n",
		"\x1b[2m                [x]\x1b[0m\n",
		"  - \x1b[31mregression\x1b[0m: slower\n",
	} {
		if !strings.Contains(color.String(), want) {
			t.Errorf("colour output lacks %q:\n%q", want, color.String())
		}
	}
}

// Text is escaped for each medium; Lit is written as it is.
func TestEscaping(t *testing.T) {
	const evil = "\x1b[2J|*_`<b>"
	d := &Doc{Sections: []Section{{Title: "T", Note: evil, Blocks: []Block{
		&Para{Prefix: evil, Text: Cat(Plain(evil), Lit("<br>"), Code(evil))},
		&List{Items: []Item{{Label: Plain(evil), Text: Plain(evil), Source: evil}}},
		&Table{Columns: []Column{{Header: "#"}}, Rows: []Row{{Cells: []Inline{Plain(evil)}}}},
	}}}}
	var text, md bytes.Buffer
	if err := WriteText(&text, d, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "\x1b") {
		t.Errorf("terminal output holds an escape:\n%q", text.String())
	}
	if !strings.Contains(text.String(), `\x1b[2J|*_`+"`<b><br>") {
		t.Errorf("terminal output does not show the escaped text and the literal:\n%s", text.String())
	}
	for _, want := range []string{
		"\\\\x1b[2J\\|\\*\\_\\`&lt;b><br>`\\x1b[2J\\|*_'<b>`\n",                                // para: text, Lit, code span
		"- \\\\x1b[2J\\|\\*\\_\\`&lt;b>: \\\\x1b[2J\\|\\*\\_\\`&lt;b> (`\\x1b[2J\\|*_'<b>`)\n", // list
		"| # |\n|---|\n| \\\\x1b[2J\\|\\*\\_\\`&lt;b> |\n",                                     // header as it is, cell escaped
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

// The first write error comes back, and nothing more is written after it.
func TestWriteError(t *testing.T) {
	for name, write := range map[string]func(*failWriter) error{
		"text":     func(w *failWriter) error { return WriteText(w, sample(), false) },
		"markdown": func(w *failWriter) error { return WriteMarkdown(w, sample()) },
	} {
		w := &failWriter{}
		if err := write(w); err == nil || err.Error() != "disk full" {
			t.Errorf("%s: err = %v, want disk full", name, err)
		}
		if w.n != 1 {
			t.Errorf("%s: %d writes after the first failed, want none", name, w.n-1)
		}
	}
}

// An empty document writes nothing.
func TestEmpty(t *testing.T) {
	var text, md bytes.Buffer
	if err := WriteText(&text, &Doc{}, true); err != nil || text.Len() != 0 {
		t.Errorf("text: %q, %v", text.String(), err)
	}
	if err := WriteMarkdown(&md, &Doc{}); err != nil || md.Len() != 0 {
		t.Errorf("markdown: %q, %v", md.String(), err)
	}
}

// A section for one medium is left out of the other, title and all; its
// blocks still go by their own Only. A terminal escapes a title.
func TestSectionOnly(t *testing.T) {
	d := &Doc{Sections: []Section{
		{Title: "Both", Blocks: []Block{&Para{Text: Plain("b")}}},
		{Title: "Terminal\x1b[2J", Note: "t", Only: TerminalOnly, Blocks: []Block{&Para{Text: Plain("t")}, &Para{Text: Plain("m"), Only: MarkdownOnly}}},
		{Title: "Markdown", Only: MarkdownOnly, Blocks: []Block{&Para{Text: Plain("m")}, &Para{Text: Plain("t"), Only: TerminalOnly}}},
	}}
	var text, md bytes.Buffer
	if err := WriteText(&text, d, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, d); err != nil {
		t.Fatal(err)
	}
	if want := "\nBoth\nb\n\nTerminal\\x1b[2J (t)\nt\n"; text.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", text.String(), want)
	}
	if want := "\n#### Both\n\nb\n\n#### Markdown\n\nm\n"; md.String() != want {
		t.Errorf("markdown:\n%q\nwant\n%q", md.String(), want)
	}
}

// A column for one medium is left out of the other's table, header and
// cells; the columns around it keep their alignment.
func TestColumnOnly(t *testing.T) {
	d := &Doc{Lead: []Block{&Table{Indent: 2, Columns: []Column{{Header: "pid", Right: true}, {Header: "first", Only: MarkdownOnly},
		{Header: "name"}, {Header: "term", Only: TerminalOnly, Width: 4}},
		Rows: []Row{{Cells: []Inline{Lit("1"), Code("main.f"), Plain("a"), Lit("x")}}, {Cells: []Inline{Lit("22"), nil, Plain("bb"), Lit("y")}}}}}}
	var text, md bytes.Buffer
	if err := WriteText(&text, d, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, d); err != nil {
		t.Fatal(err)
	}
	if want := "  pid  name  term\n  1    a        x\n  22   bb       y\n"; text.String() != want {
		t.Errorf("text:\n%s\nwant\n%s", text.String(), want)
	}
	if want := "| pid | first | name |\n|--:|---|---|\n| 1 | `main.f` | a |\n| 22 | | bb |\n"; md.String() != want {
		t.Errorf("markdown:\n%s\nwant\n%s", md.String(), want)
	}
	// A table with no column for a medium is not written there.
	for _, m := range []Medium{TerminalOnly, MarkdownOnly} {
		d := &Doc{Lead: []Block{&Table{Columns: []Column{{Header: "a", Only: m}}, Rows: []Row{{Cells: []Inline{Lit("1")}}}}}}
		text.Reset()
		md.Reset()
		if err := WriteText(&text, d, false); err != nil {
			t.Fatal(err)
		}
		if err := WriteMarkdown(&md, d); err != nil {
			t.Fatal(err)
		}
		if (m == TerminalOnly) != (text.Len() > 0) || (m == MarkdownOnly) != (md.Len() > 0) {
			t.Errorf("a table of one %v column: text %q, markdown %q", m, text.String(), md.String())
		}
	}
}
