package htmlreport

import (
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/perfhound/perfhound/analyzer/verdict"
	"github.com/perfhound/perfhound/internal/textfmt"
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
// needs, so that small rates do not all read "<0.01". Ticks too large or
// too finely spaced for that read in scientific notation, "1e+308", so
// that no label runs to hundreds of digits or repeats its neighbour's.
func axis(v, step float64, unit string) string {
	v += 0 // -0 reads 0
	decimals := func(step float64) int {
		if step <= 0 || step >= 1 {
			return 0
		}
		return int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	switch unit {
	case "ratio", "percent":
		scale := 1.0
		if unit == "ratio" {
			scale = 100
		}
		if extreme(v*scale, step*scale, 1e-6, 1e6) {
			return scientific(v, scale) + "%"
		}
		return strconv.FormatFloat(scale*v, 'f', decimals(scale*step), 64) + "%"
	case "seconds":
		// Dur reads to the nanosecond, up to time.Duration's 292 years.
		if extreme(v, step, 1e-9, 1e9) {
			return scientific(v, 1) + "s"
		}
		return textfmt.Dur(v * 1e9)
	case "bytes", "bytes/s":
		if extreme(v, step, 0.01, 1e18) {
			return scientific(v, 1) + " B"
		}
		return textfmt.SIDecimal(v, "B")
	}
	if extreme(v, step, 1e-6, 1e18) {
		return scientific(v, 1)
	}
	if math.Abs(v) >= 1000 || step >= 1 {
		return textfmt.SIDecimal(v, "")
	}
	return strconv.FormatFloat(v, 'f', decimals(step), 64)
}

// extreme reports whether a tick is past what its unit's format reads: a
// step under small, a value of large or more (or a product that overflowed).
func extreme(v, step, small, large float64) bool {
	return step < small || !(math.Abs(v) < large)
}

// scientific is v×scale to three significant digits, "1.8e+310": in
// arbitrary precision, as the product of a value near MaxFloat64 and 100
// is not a float64.
func scientific(v, scale float64) string {
	if !finite(v) {
		return "?"
	}
	return new(big.Float).Mul(big.NewFloat(v), big.NewFloat(scale)).Text('g', 3)
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
