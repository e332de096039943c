// Package textfmt is how perfhound's reports print numbers and names. The
// verdict's text and markdown, the HTML page, the observation diff and the
// benchmark comparison all show shares, rates, durations, byte counts and
// Go function names; a number read in one report must read the same in
// another, so each of them is formatted once, here.
//
// Where a report deliberately prints a number differently (the page's
// decimals under a thousand, the finer costs of a profile diff), the
// variant has its own name here rather than a copy in the report.
//
// A function documented to print "?" does so for a NaN or an infinity;
// the others leave such a value to fmt.
package textfmt

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pct is a ratio as a percentage, with a decimal under 10%: "42%", "2.5%",
// "<0.1%", in three significant digits from 10¹⁵%, "1.8e+310%", or "?".
func Pct(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "?"
	case math.Abs(x) >= 1e13:
		// In arbitrary precision: 100 times a ratio near MaxFloat64 is
		// not a float64.
		return new(big.Float).Mul(big.NewFloat(x), big.NewFloat(100)).Text('g', 3) + "%"
	case x == 0:
		return "0%"
	case math.Abs(x) < 0.001:
		return "<0.1%"
	case math.Abs(x) < 0.1:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", 100*x), ".0") + "%"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// PerSec is seconds per second of wall time (threads' worth of time):
// "1.25 s/s", or "?".
func PerSec(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	return fmt.Sprintf("%.2f s/s", x)
}

// PerWindow is seconds spent over a window of wall time as PerSec, or as
// plain seconds, "12.50 s", when the window is unknown (0 or less).
func PerWindow(seconds, window float64) string {
	if window <= 0 {
		return fmt.Sprintf("%.2f s", seconds)
	}
	return PerSec(seconds / window)
}

// Num is a plain number: whole numbers as they are, others with a
// precision that shrinks as they grow, "<0.01" under a hundredth, and "?".
func Num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	return decimals(v, 2, func(float64) string { return "<0.01" })
}

// NumPrecise is Num with a decimal more under 10, and two significant
// digits under a thousandth instead of "<0.01": a function that costs a
// thousandth of a thread still shows.
func NumPrecise(v float64) string {
	return decimals(v, 3, func(v float64) string { return fmt.Sprintf("%.2g", v) })
}

// decimals formats v: whole numbers as they are, none from 100, one from
// 10, n below that, and tiny(v) below 10⁻ⁿ; from 10¹⁵ up, where a float64
// has no more digits to show, in three significant digits, "1.8e+308".
func decimals(v float64, n int, tiny func(float64) string) string {
	switch a := math.Abs(v); {
	case a >= 1e15:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a < math.Pow10(-n):
		return tiny(v)
	}
	return fmt.Sprintf("%.*f", n, v)
}

// SI scales v with SI prefixes to three significant digits, "1.23 MB/s";
// under a thousand it prints whole units, "12 B".
func SI(v float64, unit string) string {
	v, prefix := siScale(v)
	if prefix == "" {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.3g %s%s", v, prefix, unit)
}

// SIDecimal is SI keeping Num's decimals under a thousand, "0.25 B/s", and
// with no trailing space when unit is "": for values that may be small,
// such as a chart's.
func SIDecimal(v float64, unit string) string {
	v, prefix := siScale(v)
	if prefix == "" {
		return strings.TrimSpace(Num(v) + " " + unit)
	}
	return fmt.Sprintf("%.3g %s%s", v, prefix, unit)
}

// siScale divides v by powers of a thousand, up to peta, until it is
// under a thousand, and returns it with its prefix.
func siScale(v float64) (float64, string) {
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	return v, prefixes[i]
}

// Bytes is a byte count in binary units: "512 B", "1.5 MiB".
func Bytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// Dur is nanoseconds as a duration with the precision a person reads:
// "1.23s", "4.56ms", "7.89µs", "12ns"; seconds in three significant
// digits, "9.46e+09s", past the 292 years of a time.Duration; or "?".
func Dur(ns float64) string {
	if math.IsNaN(ns) || math.IsInf(ns, 0) {
		return "?"
	}
	if math.Abs(ns) >= math.MaxInt64 {
		return strconv.FormatFloat(ns/1e9, 'g', 3, 64) + "s"
	}
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

// Bound is a histogram's upper bound in nanoseconds (a power of two, for
// eBPF's log2 slots) rounded up to two significant digits, so that it
// stays an upper bound without a precision it does not have: 2¹⁸ ns is
// "270µs". A bound of 0 or less is "0s". Reports put "≤ " before it.
func Bound(ns float64) string {
	if ns <= 0 {
		return "0s"
	}
	mag := math.Pow(10, math.Floor(math.Log10(ns))-1)
	return Dur(math.Ceil(ns/mag) * mag)
}

// Value is a measurement in its unit, briefly: a ratio as Pct, seconds
// per second as PerSec, seconds as a duration to the microsecond, bytes
// and bytes/s with SI, a count as Num ("count/s" keeps its "/s"), any
// other unit after Num; "?" for a value that is not finite.
func Value(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	switch unit {
	case "ratio":
		return Pct(v)
	case "seconds/s":
		return PerSec(v)
	case "seconds":
		if math.Abs(v*1e9) >= math.MaxInt64 {
			return strconv.FormatFloat(v, 'g', 3, 64) + "s"
		}
		return time.Duration(v * 1e9).Round(time.Microsecond).String()
	case "bytes":
		return SI(v, "B")
	case "bytes/s":
		return SI(v, "B/s")
	case "count", "":
		return Num(v)
	}
	if rest, ok := strings.CutPrefix(unit, "count"); ok {
		return Num(v) + rest
	}
	return Num(v) + " " + unit
}

// Count is n with the word for one or for many: "1 category",
// "3 categories".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Plural is Count for a word whose plural takes an s: "2 regressions".
func Plural(n int, word string) string { return Count(n, word, word+"s") }

// Loads is the load of each class, most first, then by name: "cpu 1.20,
// io 0.31 threads bound per second". It leaves out none and loads under
// 0.005, and is "" when nothing is left.
func Loads[C ~string](load map[C]float64, none C) string {
	var classes []C
	for c, l := range load {
		if c != none && l >= 0.005 {
			classes = append(classes, c)
		}
	}
	sort.Slice(classes, func(i, j int) bool {
		return load[classes[i]] > load[classes[j]] || load[classes[i]] == load[classes[j]] && classes[i] < classes[j]
	})
	var parts []string
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %.2f", c, load[c]))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + " threads bound per second"
}

// JSONNumber is x for a JSON document, or nil (null) when x is NaN or
// infinite, which JSON cannot carry and encoding/json refuses to write:
// an infinite change from a zero base, a median that overflowed.
func JSONNumber(x float64) *float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil
	}
	return &x
}
