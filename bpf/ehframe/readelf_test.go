//go:build amd64

package ehframe

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// systemObjects are distribution binaries and libraries built without
// frame pointers (Debian's), the objects native unwinding is for. Those
// missing here are skipped.
var systemObjects = []string{
	"/usr/bin/xz",
	"/usr/bin/zstd",
	"/usr/bin/gzip",
	"/lib/x86_64-linux-gnu/libc.so.6",
	"/lib64/ld-linux-x86-64.so.2",
	"/lib/x86_64-linux-gnu/libsqlite3.so.0",
	"/lib/x86_64-linux-gnu/libstdc++.so.6",
	"/lib/x86_64-linux-gnu/libcrypto.so.3",
}

// TestAgainstReadelf evaluates every FDE of real objects and compares the
// rule tables, row by row, with binutils' readelf --debug-dump=frames-interp
// (an independent implementation), in the columns readelf prints.
func TestAgainstReadelf(t *testing.T) {
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Skip("readelf (binutils) not installed")
	}
	objects := existing(t, systemObjects)
	objects = append(objects, buildFixture(t)...)
	if len(objects) == 0 {
		t.Skip("none of the objects to compare is on this machine")
	}
	for _, path := range objects {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := readelfTables(t, path)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fdes, err := FromELF(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(fdes) == 0 {
				t.Fatal("no FDEs")
			}
			checked, rows, mismatches := 0, 0, 0
			for i := range fdes {
				fde := &fdes[i]
				w, ok := want.fdes[fde.Offset]
				if !ok {
					t.Errorf("FDE at %#x (%#x..%#x): readelf lists no FDE there", fde.Offset, fde.Begin, fde.End)
					continue
				}
				if w.begin != fde.Begin || w.end != fde.End {
					t.Errorf("FDE at %#x: pc=%#x..%#x, readelf %#x..%#x", fde.Offset, fde.Begin, fde.End, w.begin, w.end)
					continue
				}
				if w.table == nil { // readelf prints no table when the FDE adds no rule: the CIE's
					w.table = want.cies[fde.CIE.Offset]
					if w.table != nil {
						w.table = &table{cols: w.table.cols, rows: []string{fmt.Sprintf("%016x %s", fde.Begin, w.table.rows[0][17:])}}
					}
				}
				if w.table == nil {
					t.Errorf("FDE at %#x: no table from readelf, nor for its CIE", fde.Offset)
					continue
				}
				got, err := ourTable(fde, w.table.cols)
				if err != nil {
					t.Errorf("FDE at %#x: %v", fde.Offset, err)
					continue
				}
				exp := merged(w.table.rows)
				checked++
				rows += len(exp)
				if !equal(got, exp) {
					mismatches++
					if mismatches <= 3 {
						t.Errorf("FDE at %#x (pc %#x..%#x), columns %v:\nours:\n  %s\nreadelf:\n  %s",
							fde.Offset, fde.Begin, fde.End, w.table.cols, strings.Join(got, "\n  "), strings.Join(exp, "\n  "))
					}
				}
			}
			if mismatches > 0 {
				t.Errorf("%d of %d FDEs differ from readelf", mismatches, checked)
			}
			if checked != len(want.fdes) {
				t.Errorf("compared %d FDEs, readelf lists %d", checked, len(want.fdes))
			}
			t.Logf("%d FDEs, %d rows, equal to readelf's", checked, rows)
		})
	}
}

// buildFixture compiles testdata/frames.c without frame pointers (the
// shapes distribution code has: saved registers, a frame on rbp for
// alloca, a realigned stack), when gcc is here. (ehtest.Build does the
// same for the walkers' tests, outside this package: these tests are
// inside it, and ehtest imports it.)
func buildFixture(t *testing.T) []string {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Log("gcc not installed: the C fixture is not compared")
		return nil
	}
	out := filepath.Join(t.TempDir(), "frames")
	cmd := exec.Command("gcc", "-O2", "-fomit-frame-pointer", "-o", out, "testdata/frames.c")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return []string{out}
}

// table is one table readelf printed: its register columns (after CFA)
// and its rows as printed, the value columns joined by single spaces.
type table struct {
	cols []string
	rows []string
}

type readelfFDE struct {
	begin, end uint64
	table      *table
}

type readelfOutput struct {
	cies map[uint32]*table
	fdes map[uint32]*readelfFDE
}

// readelfTables runs readelf --debug-dump=frames-interp on path and reads
// the .eh_frame section's part.
func readelfTables(t *testing.T, path string) readelfOutput {
	cmd := exec.Command("readelf", "--wide", "--debug-dump=frames-interp", path)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	b, err := cmd.Output()
	// readelf exits 1 on some objects (libc's) having printed every table;
	// it is an error only when the tables are not there.
	if !bytes.Contains(b, []byte("Contents of the .eh_frame section")) {
		t.Fatalf("readelf: %v, and no .eh_frame tables in its output", err)
	}
	out := readelfOutput{cies: map[uint32]*table{}, fdes: map[uint32]*readelfFDE{}}
	var cur *table
	inEH := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Contents of the ") {
			inEH = strings.Contains(line, ".eh_frame section")
			cur = nil
			continue
		}
		if !inEH {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			cur = nil
		case len(f) >= 4 && f[3] == "CIE":
			off, _ := strconv.ParseUint(f[0], 16, 32)
			cur = &table{}
			out.cies[uint32(off)] = cur
		case len(f) >= 6 && f[3] == "FDE":
			off, _ := strconv.ParseUint(f[0], 16, 32)
			pc := strings.TrimPrefix(f[5], "pc=")
			lo, hi, _ := strings.Cut(pc, "..")
			begin, _ := strconv.ParseUint(lo, 16, 64)
			end, _ := strconv.ParseUint(hi, 16, 64)
			fde := &readelfFDE{begin: begin, end: end}
			out.fdes[uint32(off)] = fde
			cur = nil
			// The table, if any, follows; attach it when its header comes.
			cur = &table{}
			fde.table = cur
		case f[0] == "LOC" && cur != nil:
			cur.cols = f[2:] // after LOC and CFA
		case cur != nil && cur.cols != nil && len(f[0]) == 16:
			// "rN (name)" is a register rule in two fields: join them.
			var vals []string
			for i := 1; i < len(f); i++ {
				if strings.HasPrefix(f[i], "(") && len(vals) > 0 {
					continue
				}
				vals = append(vals, f[i])
			}
			cur.rows = append(cur.rows, f[0]+" "+strings.Join(vals, " "))
		}
	}
	// An FDE whose table header never came has no table of its own.
	for _, fde := range out.fdes {
		if fde.table != nil && fde.table.cols == nil {
			fde.table = nil
		}
	}
	return out
}

// x86-64 register names as readelf prints them, by DWARF number.
var regNames = []string{"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"}

// ourTable formats the FDE's rows as readelf prints them, in its columns.
func ourTable(fde *FDE, cols []string) ([]string, error) {
	regs := make([]Reg, len(cols))
	for i, c := range cols {
		if c == "ra" {
			regs[i] = fde.CIE.RAReg
			continue
		}
		found := false
		for n, name := range regNames {
			if name == c {
				regs[i], found = Reg(n), true
			}
		}
		if !found {
			return nil, fmt.Errorf("readelf column %q is no x86-64 register this package tracks", c)
		}
	}
	var rows []string
	err := fde.Rows(func(r *Row) bool {
		var b strings.Builder
		fmt.Fprintf(&b, "%016x ", r.Loc)
		if r.CFA.Expr != nil {
			b.WriteString("exp")
		} else {
			fmt.Fprintf(&b, "%s%+d", regNames[r.CFA.Reg], r.CFA.Offset)
		}
		for _, reg := range regs {
			b.WriteByte(' ')
			rule := r.Regs[reg]
			switch rule.Kind {
			case RuleUndefined:
				b.WriteString("u")
			case RuleSameValue:
				b.WriteString("s")
			case RuleOffset:
				fmt.Fprintf(&b, "c%+d", rule.Offset)
			case RuleValOffset:
				fmt.Fprintf(&b, "v%+d", rule.Offset)
			case RuleRegister:
				fmt.Fprintf(&b, "r%d", rule.Reg)
			case RuleExpression:
				b.WriteString("exp")
			case RuleValExpression:
				b.WriteString("vexp")
			}
		}
		rows = append(rows, b.String())
		return true
	})
	return merged(rows), err
}

// merged drops rows whose values equal the previous row's: readelf
// prints a row at every advance, this package only when a rule changes.
// readelf writes an offset as c-8 and we as c-8 too; c+8 is readelf's
// "c8".
func merged(rows []string) []string {
	var out []string
	prev := ""
	for _, r := range rows {
		r = strings.ReplaceAll(r, "c+", "c")
		r = strings.ReplaceAll(r, "v+", "v")
		vals := r[17:]
		if vals == prev {
			continue
		}
		prev = vals
		out = append(out, r)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
