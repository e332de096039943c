package htmlreport

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// maxGoroutineRows bounds the goroutine table: a service can have
// thousands of distinct stacks, and the few largest groups say what its
// goroutines are doing.
const maxGoroutineRows = 10

// goroutineView is a Go goroutine profile's goroutines grouped by what
// they wait on and where in the program.
type goroutineView struct {
	Source observation.ProfileSource
	// When says what moment the profile shows: "at the window's end" for
	// goscrape's snapshot.
	When  string
	Total int
	Rows  []goroutineRow
	// MoreGroups groups of MoreGoroutines goroutines are past the table.
	MoreGroups, MoreGoroutines int
}

type goroutineRow struct {
	Count int
	Share float64
	State string  // what the goroutines do: "waiting on a lock"...
	Where string  // the function that waits: the program's own, where there is one
	Line  string  // its file and line
	Stack string  // a whole stack of the group, leaf first, for a tooltip
	n     float64 // Count unsaturated, for Share
}

// goroutines groups the goroutines of the observation's latest goroutine
// profile, nil when it has none with goroutines.
func goroutines(o *observation.Observation) *goroutineView {
	ps := pickProfiles(o, observation.KindGoroutine, observation.SourcePprof, observation.SourceIngest)
	if len(ps) == 0 {
		return nil
	}
	p := ps[len(ps)-1] // snapshots: the last is the latest
	idx := valueIndex(p.Profile, "")
	if idx < 0 {
		return nil
	}
	type key struct{ state, where, line string }
	groups := map[key]*goroutineRow{}
	// Counts saturate at MaxInt (a hostile profile's sum would wrap);
	// shares are of float sums, which cannot.
	var total int
	var totalN float64
	var fns []*profile.Line
	var names []string
	for _, s := range p.Profile.Sample {
		if idx >= len(s.Value) || s.Value[idx] <= 0 {
			continue
		}
		n := s.Value[idx]
		total = satAdd(total, n)
		totalN += float64(n)
		fns = linesOf(s, fns)
		names = funcNames(fns, names)
		k := key{state: verdict.GoroutineState(names)}
		if i := verdict.GoroutineWaitSite(names); i >= 0 {
			w := fns[i]
			k.where = w.Function.Name
			if w.Function.Filename != "" {
				k.line = fmt.Sprintf("%s:%d", path.Base(w.Function.Filename), w.Line)
			}
		}
		g := groups[k]
		if g == nil {
			g = &goroutineRow{State: k.state, Where: k.where, Line: k.line, Stack: stackText(fns)}
			groups[k] = g
		}
		g.Count = satAdd(g.Count, n)
		g.n += float64(n)
	}
	if total == 0 {
		return nil
	}
	rows := make([]goroutineRow, 0, len(groups))
	for _, g := range groups {
		g.Share = g.n / totalN
		rows = append(rows, *g)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.State != b.State {
			return a.State < b.State
		}
		return a.Where+a.Line < b.Where+b.Line
	})
	v := &goroutineView{Source: p.Source, Total: total}
	if p.Labels["mode"] == "snapshot" {
		v.When = "at the window's end"
	}
	if len(rows) > maxGoroutineRows {
		for _, r := range rows[maxGoroutineRows:] {
			v.MoreGroups++
			v.MoreGoroutines = satAdd(v.MoreGoroutines, int64(r.Count))
		}
		rows = rows[:maxGoroutineRows]
	}
	v.Rows = rows
	return v
}

// satAdd is a+b, or MaxInt past it; b > 0.
func satAdd(a int, b int64) int {
	if b > int64(math.MaxInt-a) {
		return math.MaxInt
	}
	return a + int(b)
}

// linesOf lists a sample's lines with a function, leaf first.
func linesOf(s *profile.Sample, buf []*profile.Line) []*profile.Line {
	buf = buf[:0]
	for _, l := range s.Location {
		for i := range l.Line {
			if l.Line[i].Function != nil {
				buf = append(buf, &l.Line[i])
			}
		}
	}
	return buf
}

// funcNames are the lines' function names, leaf first, as the verdict
// reads a goroutine's stack.
func funcNames(lines []*profile.Line, buf []string) []string {
	buf = buf[:0]
	for _, l := range lines {
		buf = append(buf, l.Function.Name)
	}
	return buf
}

// stackText is a stack for a tooltip, leaf first, at most 24 functions.
func stackText(lines []*profile.Line) string {
	var b strings.Builder
	for i, l := range lines {
		if i == 24 {
			fmt.Fprintf(&b, "… %d more", len(lines)-i)
			break
		}
		b.WriteString(l.Function.Name)
		if l.Function.Filename != "" {
			fmt.Fprintf(&b, " %s:%d", path.Base(l.Function.Filename), l.Line)
		}
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}
