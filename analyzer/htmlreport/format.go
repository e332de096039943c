package htmlreport

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

// The helpers below mirror verdict's text renderers, which it keeps
// unexported; a page and a terminal report of the same verdict should
// print the same numbers the same way.

// categoryNames say each breakdown category for a person.
var categoryNames = map[string]string{
	verdict.OnCPUUser:      "user code",
	verdict.OnCPUGC:        "garbage collection",
	verdict.OnCPUAlloc:     "allocation",
	verdict.OnCPUPageFault: "page faults",
	verdict.OnCPUSyscall:   "syscalls",
	verdict.OnCPUKernel:    "other kernel work",
	verdict.WaitRunQueue:   "waiting for a CPU",
	verdict.WaitDisk:       "block I/O",
	verdict.WaitFault:      "page faults waiting on I/O or reclaim",
	verdict.WaitNetwork:    "sockets",
	verdict.WaitLock:       "locks",
	verdict.WaitPoll:       "poll and epoll",
	verdict.WaitSleep:      "sleeping",
	verdict.WaitIdle:       "idle runtime or kernel threads",
	verdict.WaitOther:      "other waits",
}

// categoryColors give each breakdown category its colour in the stacked
// bar: warm for on-CPU time, cool for waits, greys for idleness, so that
// the bar reads at a glance.
var categoryColors = map[string]string{
	verdict.OnCPUUser:      "#e4572e",
	verdict.OnCPUGC:        "#f29e4c",
	verdict.OnCPUAlloc:     "#f1c453",
	verdict.OnCPUPageFault: "#c97b63",
	verdict.OnCPUSyscall:   "#b5452b",
	verdict.OnCPUKernel:    "#8c2f1e",
	verdict.WaitRunQueue:   "#9b5de5",
	verdict.WaitDisk:       "#1f6f9f",
	verdict.WaitFault:      "#5fa8d3",
	verdict.WaitNetwork:    "#2a9d8f",
	verdict.WaitLock:       "#6a4c93",
	verdict.WaitPoll:       "#8ecae6",
	verdict.WaitSleep:      "#b8c1cc",
	verdict.WaitIdle:       "#d3d9e0",
	verdict.WaitOther:      "#9aa5b1",
}

func pct(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "?"
	case x == 0:
		return "0%"
	case math.Abs(x) < 0.001:
		return "<0.1%"
	case math.Abs(x) < 0.1:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", 100*x), ".0") + "%"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func perSec(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	return fmt.Sprintf("%.2f s/s", x)
}

// num is a plain number: whole numbers as they are, others with a
// precision that shrinks as they grow.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "?"
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a < 0.01:
		return "<0.01"
	}
	return fmt.Sprintf("%.2f", v)
}

// si scales v with SI prefixes: 1.2 MB/s.
func si(v float64, unit string) string {
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return strings.TrimSpace(num(v) + " " + unit)
	}
	return fmt.Sprintf("%.3g %s%s", v, prefixes[i], unit)
}

// dur prints nanoseconds with the precision a person reads.
func dur(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond).String()
	}
	return d.String()
}

// bound prints a histogram's upper bound to two significant digits: the
// log2 slots have no more precision than that.
func bound(seconds float64) string {
	ns := seconds * 1e9
	if ns <= 0 {
		return "0s"
	}
	mag := math.Pow(10, math.Floor(math.Log10(ns))-1)
	return "≤ " + dur(math.Ceil(ns/mag)*mag)
}

// value formats a value in its unit, briefly.
func value(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	switch unit {
	case "ratio":
		return pct(v)
	case "percent":
		return num(v) + "%"
	case "seconds/s":
		return perSec(v)
	case "seconds":
		return dur(v * 1e9)
	case "nanoseconds":
		return dur(v)
	case "bytes":
		return si(v, "B")
	case "bytes/s":
		return si(v, "B/s")
	case "cores":
		return num(v) + " cores"
	case "count", "":
		return num(v)
	}
	if rest, ok := strings.CutPrefix(unit, "count"); ok {
		return num(v) + rest
	}
	return num(v) + " " + unit
}

// axis formats an axis tick, shorter than value (the unit is in the
// chart's title) and with as many decimals as the step between ticks
// needs, so that small rates do not all read "<0.01".
func axis(v, step float64, unit string) string {
	decimals := func(step float64) int {
		if step <= 0 || step >= 1 {
			return 0
		}
		return int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	switch unit {
	case "ratio":
		return strconv.FormatFloat(100*v, 'f', decimals(100*step), 64) + "%"
	case "percent":
		return strconv.FormatFloat(v, 'f', decimals(step), 64) + "%"
	case "seconds":
		return dur(v * 1e9)
	case "bytes", "bytes/s":
		return si(v, "B")
	}
	if math.Abs(v) >= 1000 || step >= 1 {
		return si(v, "")
	}
	return strconv.FormatFloat(v, 'f', decimals(step), 64)
}

func metricCell(m *verdict.Metric) string {
	if m == nil {
		return "-"
	}
	return value(m.Value, m.Unit)
}

// metricNote is a metric's text with its threshold and signal, for a
// cell's tooltip.
func metricNote(m *verdict.Metric) string {
	if m == nil {
		return ""
	}
	s := m.Text
	if m.Threshold > 0 {
		s += fmt.Sprintf(" (threshold %s)", value(m.Threshold, m.Unit))
	}
	return s + " [" + m.Signal + "]"
}

// shortNames drops the import path's directories from the Go function
// names in s: "crypto/internal/fips140/sha256.blockSHANI" becomes
// "sha256.blockSHANI". File paths and library names stay.
func shortNames(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if w == "" || w[0] == '/' || w[0] == '[' {
			continue
		}
		head := w
		if j := strings.IndexAny(w, "(["); j >= 0 {
			head = w[:j]
		}
		if j := strings.LastIndexByte(head, '/'); j >= 0 {
			words[i] = w[j+1:]
		}
	}
	return strings.Join(words, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// targetText says what was watched and when.
func targetText(v *verdict.Verdict) string {
	t := v.Target
	var what string
	switch {
	case t.Kind == "host":
		what = "the host"
	case t.PID != 0 && len(t.Command) > 0:
		what = fmt.Sprintf("%s %d (%s)", t.Kind, t.PID, strings.Join(t.Command, " "))
	case t.PID != 0:
		what = fmt.Sprintf("%s %d", t.Kind, t.PID)
	case len(t.Command) > 0:
		what = fmt.Sprintf("%s %s", t.Kind, strings.Join(t.Command, " "))
	case t.URL != "":
		what = t.URL
	case t.App != "":
		what = "app " + t.App
	case t.Kind != "":
		what = t.Kind
	}
	if len(t.Labels) > 0 {
		what += " {" + labelText(t.Labels) + "}"
	}
	var when []string
	if v.Duration > 0 {
		when = append(when, v.Duration.Round(time.Millisecond).String())
	}
	if !v.Start.IsZero() {
		when = append(when, "from "+v.Start.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if what == "" && len(when) == 0 {
		return ""
	}
	if what == "" {
		what = "target unknown"
	}
	if len(when) > 0 {
		what += ", " + strings.Join(when, " ")
	}
	return what
}

// labelText is labels as k=v, sorted by key.
func labelText(labels map[string]string) string {
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
