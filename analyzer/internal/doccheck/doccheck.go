// Package doccheck is for tests that hold a document and the code to
// agreement: the tables of a markdown document and the names they give in
// backquotes, compared with what the code lists both ways; and the
// constants a Go file declares, so that a test can tell a list function
// that leaves one out.
package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Table is one markdown table of a document: its header cells and rows.
type Table struct {
	Header []string
	Rows   [][]string
}

// Tables reads the tables of a markdown document under a "## " heading
// (the whole document when section is ""), up to the next "## " heading;
// a document without one there fails the test.
func Tables(t testing.TB, path, section string) []Table {
	t.Helper()
	var (
		out []Table
		cur *Table
	)
	for _, line := range sectionLines(t, path, section) {
		if !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cur == nil:
			out = append(out, Table{Header: cells})
			cur = &out[len(out)-1]
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the separator row
		default:
			cur.Rows = append(cur.Rows, cells)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no tables under %q", path, section)
	}
	return out
}

// Block is the first fenced code block of a language ("```json") under a
// "## " heading, without its fences; a section without one fails the test.
func Block(t testing.TB, path, section, lang string) string {
	t.Helper()
	var (
		b      strings.Builder
		inside bool
	)
	for _, line := range sectionLines(t, path, section) {
		switch {
		case !inside && strings.TrimSpace(line) == "```"+lang:
			inside = true
		case inside && strings.TrimSpace(line) == "```":
			return b.String()
		case inside:
			b.WriteString(line + "\n")
		}
	}
	t.Fatalf("%s: no %s block under %q", path, lang, section)
	return ""
}

// sectionLines reads the lines of a markdown document under a "## "
// heading (all of them when section is ""), up to the next one. Each
// heading reads as an empty line, so that no table or block runs on from
// one section into the next.
func sectionLines(t testing.TB, path, section string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []string
		inside = section == ""
	)
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			inside = section == "" || strings.TrimSpace(h) == section
			out = append(out, "")
			continue
		}
		if inside {
			out = append(out, line)
		}
	}
	return out
}

// Column is the index of a table's column by its header, -1 when absent.
func (tb Table) Column(header string) int {
	for i, h := range tb.Header {
		if h == header {
			return i
		}
	}
	return -1
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// Names reads the names a cell gives: full dotted names in backquotes,
// and ".x" abbreviations that replace the last part of the name before
// them ("`host.load.load1`, `.load5`").
func Names(cell string) []string {
	var out []string
	prev := ""
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		n := m[1]
		if strings.HasPrefix(n, ".") && prev != "" {
			n = prev[:strings.LastIndex(prev, ".")] + n
		}
		out = append(out, n)
		prev = n
	}
	return out
}

// units reads the units of a row, one per name: a single unit applies to
// every name, a list gives one each ("bytes/s, count/s").
func units(cell string, names int) []string {
	units := strings.Split(cell, ",")
	for i := range units {
		units[i] = strings.TrimSpace(units[i])
	}
	if len(units) == 1 {
		for len(units) < names {
			units = append(units, units[0])
		}
	}
	return units
}

// Documented collects the names the first cells of the tables whose first
// header is first give, each with its unit when the table has a "unit"
// column ("" when not). A row that names nothing, a name given twice and
// a row whose units do not match its names fail the test.
func Documented(t testing.TB, tables []Table, first string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range tables {
		if tb.Header[0] != first {
			continue
		}
		u := tb.Column("unit")
		for _, row := range tb.Rows {
			names := Names(row[0])
			if len(names) == 0 {
				t.Errorf("a %s row names nothing in backquotes: %q", first, row[0])
			}
			var us []string
			if u >= 0 && u < len(row) {
				us = units(row[u], len(names))
				if len(us) != len(names) {
					t.Errorf("%v: %d units %q for %d names", names, len(us), row[u], len(names))
					continue
				}
			}
			for i, n := range names {
				if _, dup := out[n]; dup {
					t.Errorf("%s %s is documented twice", first, n)
				}
				out[n] = ""
				if us != nil {
					out[n] = us[i]
				}
			}
		}
	}
	return out
}

// Agree reports every name on one side only, and every unit that
// differs; what names the kind of name, doc the document. Nothing listed
// in the code fails too.
func Agree(t testing.TB, what, doc string, documented, listed map[string]string) {
	t.Helper()
	var names []string
	for n := range listed {
		names = append(names, n)
	}
	for n := range documented {
		if _, ok := listed[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d, inDoc := documented[n]
		c, inCode := listed[n]
		switch {
		case !inDoc:
			t.Errorf("%s %s is in the code but not documented in %s", what, n, doc)
		case !inCode:
			t.Errorf("%s %s is documented in %s but not in the code", what, n, doc)
		case d != c:
			t.Errorf("%s %s: unit %q in %s, %q in the code", what, n, d, doc, c)
		}
	}
	if len(listed) == 0 {
		t.Errorf("no %s in the code", what)
	}
}

// Listed checks that the functions or variables named lists in a Go file name every
// constant the file declares of type typ ("" for untyped constants)
// between them: a constant declared and left out of its list would escape
// a test that reads the list.
func Listed(t testing.TB, path, typ string, lists ...string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	used := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			for _, s := range d.Specs {
				vs, ok := s.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for _, n := range vs.Names {
					switch {
					case d.Tok == token.CONST && typeName(vs.Type) == typ:
						declared[n.Name] = true
					case d.Tok == token.VAR && slices.Contains(lists, n.Name):
						for _, v := range vs.Values {
							idents(v, used)
						}
					}
				}
			}
		case *ast.FuncDecl:
			if slices.Contains(lists, d.Name.Name) && d.Recv == nil {
				idents(d.Body, used)
			}
		}
	}
	if len(declared) == 0 {
		t.Fatalf("%s declares no constants of type %q", path, typ)
	}
	var left []string
	for n := range declared {
		if !used[n] {
			left = append(left, n)
		}
	}
	sort.Strings(left)
	for _, n := range left {
		t.Errorf("%s: %s is in none of %s", path, n, strings.Join(lists, ", "))
	}
}

// idents adds every identifier under n to into.
func idents(n ast.Node, into map[string]bool) {
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			into[id.Name] = true
		}
		return true
	})
}

func typeName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
