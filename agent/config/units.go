package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go writes one ("10s", "1m30s",
// "6h") or with a leading count of days ("7d", "1d12h"), which Go's
// syntax lacks and retention needs.
type Duration time.Duration

// ParseDuration reads a Duration: a Go duration, optionally after a whole
// or decimal number of days ("7d", "1.5d", "2d6h").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (as 10s, 5m, 6h or 7d)", s)
		}
		return Duration(d), nil
	}
	n, err := strconv.ParseFloat(days, 64)
	if err != nil || n < 0 || strings.ContainsAny(days, "+-eEinfINFxX_") {
		return 0, fmt.Errorf("%q is not a duration (as 10s, 5m, 6h or 7d)", s)
	}
	var r time.Duration
	if rest != "" {
		if r, err = time.ParseDuration(rest); err != nil || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return 0, fmt.Errorf("%q is not a duration (as 10s, 5m, 6h or 7d)", s)
		}
	}
	total := n*float64(24*time.Hour) + float64(r)
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	return Duration(total), nil
}

// String writes d so that ParseDuration reads it back: whole days as "7d",
// anything else as Go does without its zero parts ("6h", not "6h0m0s").
func (d Duration) String() string {
	const day = Duration(24 * time.Hour)
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalYAML reads a duration; a bare number is refused (10 what?).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "a duration (as 10s, 5m, 6h or 7d)")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return valueError(n, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as String does.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Size is a number of bytes written with a unit: "2GiB", "500MiB", "64KiB"
// (powers of 1024), "1GB" (powers of 1000), or a plain number of bytes.
// No module in go.mod parses sizes, so this is perfhound's own.
type Size int64

var sizeUnits = []struct {
	name string
	n    int64
}{
	// Longest first, so that "GiB" is not read as "B" after "Gi".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize reads a Size: a number (whole or decimal) and a unit, with or
// without a space between, or a whole number of bytes.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a size (as 500MiB, 2GiB or 1GB)", s)
	num, unit := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.name) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(s, u.name)), u.n
			break
		}
	}
	if num == "" || strings.ContainsAny(num, "+-eEinfINFxX_") {
		return 0, bad
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/unit {
			return 0, fmt.Errorf("%q is too large a size", s)
		}
		return Size(n * unit), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad
	}
	if f*float64(unit) >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return Size(math.Round(f * float64(unit))), nil
}

// String writes s in the largest binary unit that holds it whole ("2GiB"),
// else in bytes, so that ParseSize reads it back exactly.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    Size
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML reads a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "a size (as 500MiB, 2GiB or 1GB)")
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return valueError(n, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// valueError and typeError are the YAML decoder's own kind of error, which
// it collects with the others of the file, and whose line Load turns into
// the key's name.
func valueError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
}

func typeError(n *yaml.Node, want string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want %s", n.Line, want)}}
}
