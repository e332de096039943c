// Package profdecode decodes pprof profiles within bounds that hold for
// hostile input.
//
// A profile's size on disk says little about what parsing it costs: the
// protobuf wire form packs a stack frame reference into one byte that
// github.com/google/pprof/profile turns into two 8-byte words, an empty
// sample into two bytes that become a 128-byte struct, and gzip shrinks
// repetitive samples a thousandfold. So a 42 KB upload can ask for
// gigabytes. Decode therefore decompresses once and within a byte cap,
// then Measure counts what parsing would build (samples, stack
// references, locations, lines, functions, strings, labels) from the wire
// form alone, in one pass that allocates nothing, and only a profile whose
// estimated cost fits both its own Limits and the caller's run-wide Budget
// is parsed.
//
// Every reader of profiles shares this package: the inputs of compare,
// saved observations, scraped Go services and pushed profiles.
package profdecode

import (
	"errors"
	"fmt"

	"github.com/google/pprof/profile"
)

// Sentinel errors; test them with errors.Is.
var (
	// ErrTooLarge is a profile over one of its Limits.
	ErrTooLarge = errors.New("larger than the input limit")
	// ErrNestedGzip is a profile still gzipped after one decompression:
	// pprof's parser would inflate the inner layer without any bound.
	ErrNestedGzip = errors.New("gzip inside gzip")
	// ErrOverBudget is a profile whose parse would take the run past its
	// memory Budget.
	ErrOverBudget = errors.New("over the memory budget")
)

// Limits bound one profile. A zero field takes DefaultLimits' value.
type Limits struct {
	// MaxBytes caps the profile's size as given and once decompressed.
	MaxBytes int64
	// MaxSamples and MaxLocations cap the counts of the parsed profile.
	MaxSamples   int
	MaxLocations int
	// MaxMemory caps Cost.Memory, the estimated size of the parsed profile.
	MaxMemory int64
}

// DefaultLimits are far above any real profile (a busy host's 60 s CPU
// profile has tens of thousands of samples and locations and parses into
// tens of MB) and far below a machine's memory.
var DefaultLimits = Limits{
	MaxBytes:     256 << 20,
	MaxSamples:   4 << 20,
	MaxLocations: 4 << 20,
	MaxMemory:    2 << 30,
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxSamples <= 0 {
		l.MaxSamples = DefaultLimits.MaxSamples
	}
	if l.MaxLocations <= 0 {
		l.MaxLocations = DefaultLimits.MaxLocations
	}
	if l.MaxMemory <= 0 {
		l.MaxMemory = DefaultLimits.MaxMemory
	}
	return l
}

// check returns an ErrTooLarge that names the first limit c exceeds.
func (l Limits) check(c Cost) error {
	// Counting stops once past a limit (Cost.Partial): the count is then
	// the limit plus one, and the profile has more.
	count := func(n, limit int) string {
		if c.Partial {
			return fmt.Sprintf("more than %d", limit)
		}
		return fmt.Sprint(n)
	}
	switch {
	case c.Samples > l.MaxSamples:
		return fmt.Errorf("%w: %s samples, limit %d", ErrTooLarge, count(c.Samples, l.MaxSamples), l.MaxSamples)
	case c.Locations > l.MaxLocations:
		return fmt.Errorf("%w: %s locations, limit %d", ErrTooLarge, count(c.Locations, l.MaxLocations), l.MaxLocations)
	case c.Memory() > l.MaxMemory:
		about := "about"
		if c.Partial {
			about = "more than"
		}
		return fmt.Errorf("%w: parsing would take %s %s, limit %s", ErrTooLarge, about, mib(c.Memory()), mib(l.MaxMemory))
	}
	return nil
}

// IsGzip reports whether data starts with gzip's magic number.
func IsGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// Gunzip decompresses data, refusing output past max bytes.
func Gunzip(data []byte, max int64) ([]byte, error) {
	out, _, err := GunzipCharged(data, max, nil)
	return out, err
}

// Decode parses a pprof profile, gzipped or not: it decompresses at most
// once and within lim.MaxBytes, measures the result, refuses it when it
// exceeds lim, charges its Cost.Memory to b (when b is not nil), and only
// then parses. The charge stays after Decode returns, because the profile
// holds that memory: the caller refunds it when it drops the profile. On
// an error nothing stays charged. It does not require samples: an
// endpoint may serve an empty profile.
func Decode(data []byte, lim Limits, b *Budget) (*profile.Profile, Cost, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, Cost{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	if IsGzip(data) {
		// The compressed form is garbage once inflated: only the
		// inflated bytes count while parsing.
		var err error
		if data, err = Gunzip(data, lim.MaxBytes); err != nil {
			return nil, Cost{}, err
		}
		if IsGzip(data) {
			return nil, Cost{}, fmt.Errorf("parsing pprof: %w", ErrNestedGzip)
		}
	}
	c := measureWithin(data, &lim)
	if err := lim.check(c); err != nil {
		return nil, c, err
	}
	if err := b.Charge(c.Memory()); err != nil {
		return nil, c, err
	}
	// ParseData validates what it decodes (Profile.CheckValid), so a
	// profile that parses is well-formed.
	p, err := profile.ParseData(data)
	if err != nil {
		b.Refund(c.Memory())
		return nil, c, fmt.Errorf("parsing pprof: %w", err)
	}
	return p, c, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
