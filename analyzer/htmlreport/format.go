package htmlreport

import (
	"fmt"
	"math"
	"strconv"

	"github.com/perfhound/perfhound/analyzer/internal/textfmt"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

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

// bound is a latency bound in seconds as the page shows it: "≤ 270µs",
// or "0s" for none.
func bound(seconds float64) string {
	ns := seconds * 1e9
	if ns <= 0 {
		return "0s"
	}
	return "≤ " + textfmt.Bound(ns)
}

// value formats a value in its unit, briefly, as the text reports do
// (textfmt.Value), and in the units of the page's charts besides, a
// percentage and nanoseconds; durations take Dur's precision, and byte
// counts under a thousand keep their decimals.
func value(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	switch unit {
	case "percent":
		return textfmt.Num(v) + "%"
	case "seconds":
		return textfmt.Dur(v * 1e9)
	case "nanoseconds":
		return textfmt.Dur(v)
	case "bytes":
		return textfmt.SIDecimal(v, "B")
	case "bytes/s":
		return textfmt.SIDecimal(v, "B/s")
	}
	return textfmt.Value(v, unit)
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
		return textfmt.Dur(v * 1e9)
	case "bytes", "bytes/s":
		return textfmt.SIDecimal(v, "B")
	}
	if math.Abs(v) >= 1000 || step >= 1 {
		return textfmt.SIDecimal(v, "")
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
