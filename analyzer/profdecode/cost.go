package profdecode

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Cost is what parsing a profile builds, counted from its wire form.
type Cost struct {
	// Bytes is the size of the decompressed profile.
	Bytes int64 `json:"bytes"`
	// Samples, Locations, Lines, Functions, Mappings and Strings count
	// the messages of each kind.
	Samples   int `json:"samples"`
	Locations int `json:"locations"`
	Lines     int `json:"lines"`
	Functions int `json:"functions"`
	Mappings  int `json:"mappings"`
	Strings   int `json:"strings"`
	// StackRefs counts the location references of all samples (the sum
	// of their stack depths), Values their values, Labels their labels.
	StackRefs int `json:"stack_refs"`
	Values    int `json:"values"`
	Labels    int `json:"labels"`
	// Legacy is set when the data is not protobuf: pprof's parser then
	// tries its legacy text formats, whose cost is estimated from Bytes.
	Legacy bool `json:"legacy,omitempty"`
	// Partial is set when counting stopped at a limit the profile had
	// already passed: the counts are lower bounds.
	Partial bool `json:"partial,omitempty"`
}

// What each decoded item costs in github.com/google/pprof/profile, in
// bytes: the struct with its slice headers and pointer in the parent's
// slice, the index the decoder keeps beside it, and the maps postDecode
// builds from IDs. Sizes are those of pprof's structs on 64-bit
// platforms, rounded up to Go's allocation size classes; TestMemoryBounds
// checks the estimate against what parsing really allocates.
const (
	sampleBytes   = 128 + 8 + 48  // Sample, its pointer, decode-time growth of the slice
	stackRefBytes = 8 + 8 + 8     // locationIDX word, Location pointer, growth
	valueBytes    = 8 + 8         // int64 and growth
	labelBytes    = 32 + 128 + 32 // labelX entry, a map entry with its []string, growth
	locationBytes = 80 + 8 + 48   // Location, pointer, the ID map's entry
	lineBytes     = 40 + 16       // Line and growth
	functionBytes = 112 + 8 + 48  // Function, pointer, the ID map's entry
	mappingBytes  = 160 + 8 + 48  // Mapping, pointer, the ID map's entry
	stringBytes   = 16 + 8        // string header and growth (contents count in Bytes)
	// legacyFactor bounds what pprof's text formats build per byte of
	// text: a frame address of a few characters becomes a Location.
	legacyFactor = 64
)

// Memory is the estimated number of bytes the parsed profile holds, and
// about the most its parse allocates: the decoded items plus the
// decompressed bytes themselves, which the string table points into.
func (c Cost) Memory() int64 {
	if c.Legacy {
		return c.Bytes * legacyFactor
	}
	return c.Bytes +
		int64(c.Samples)*sampleBytes +
		int64(c.StackRefs)*stackRefBytes +
		int64(c.Values)*valueBytes +
		int64(c.Labels)*labelBytes +
		int64(c.Locations)*locationBytes +
		int64(c.Lines)*lineBytes +
		int64(c.Functions)*functionBytes +
		int64(c.Mappings)*mappingBytes +
		int64(c.Strings)*stringBytes
}

// Field numbers of perftools.profiles.Profile (pprof's profile.proto).
const (
	fieldSample   = 2
	fieldMapping  = 3
	fieldLocation = 4
	fieldFunction = 5
	fieldString   = 6

	sampleLocationID = 1
	sampleValue      = 2
	sampleLabel      = 3
	locationLine     = 4
)

// Measure counts what parsing data (a decompressed profile) would build,
// in one pass over its protobuf wire form that allocates nothing. Data
// that is not well-formed protobuf is measured as legacy text.
func Measure(data []byte) Cost { return measureWithin(data, nil) }

// measureWithin is Measure that stops counting, and sets Partial, as
// soon as the profile is past lim (when lim is not nil): refusing a
// hostile profile then costs no more than reading up to the limit.
func measureWithin(data []byte, lim *Limits) Cost {
	c := Cost{Bytes: int64(len(data))}
	if !c.measure(data, lim) {
		return Cost{Bytes: int64(len(data)), Legacy: true}
	}
	return c
}

// measure walks the top-level fields, and inside samples and locations
// the repeated fields that cost memory. It reports false on malformed
// wire data, and stops early once past lim (when not nil).
func (c *Cost) measure(b []byte, lim *Limits) bool {
	for len(b) > 0 {
		if lim != nil && lim.check(*c) != nil {
			c.Partial = true
			return true
		}
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case fieldSample:
			c.Samples++
			if !c.measureSample(v) {
				return false
			}
		case fieldLocation:
			c.Locations++
			lines, ok := countField(v, locationLine)
			if !ok {
				return false
			}
			c.Lines += lines
		case fieldFunction:
			c.Functions++
		case fieldMapping:
			c.Mappings++
		case fieldString:
			c.Strings++
		}
	}
	return true
}

// measureSample counts a sample's location IDs and values, packed or
// not, and its labels.
func (c *Cost) measureSample(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		items := 1
		if typ == protowire.BytesType && (num == sampleLocationID || num == sampleValue) {
			packed, _ := protowire.ConsumeBytes(b)
			items = countVarints(packed)
		}
		switch num {
		case sampleLocationID:
			c.StackRefs += items
		case sampleValue:
			c.Values += items
		case sampleLabel:
			c.Labels++
		}
		b = b[m:]
	}
	return true
}

// countField counts the occurrences of field num in message b.
func countField(b []byte, num protowire.Number) (int, bool) {
	count := 0
	for len(b) > 0 {
		n0, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(n0, typ, b); n < 0 {
			return 0, false
		}
		b = b[n:]
		if n0 == num {
			count++
		}
	}
	return count, true
}

// countVarints counts the varints of a packed field: one per byte whose
// continuation bit is clear.
func countVarints(b []byte) int {
	n := 0
	for _, x := range b {
		if x < 0x80 {
			n++
		}
	}
	return n
}
