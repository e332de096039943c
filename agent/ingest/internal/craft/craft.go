// Package craft builds hostile pprof profiles for ingest's tests and its
// memory measurement: tiny on the wire, huge once parsed.
package craft

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
)

// ManySamples returns an uncompressed pprof profile of one sample type
// (samples/count), one location and n samples, each on that location
// with the value 1. On the wire a sample is 8 bytes and gzip shrinks the
// run of identical samples about 1000 times, while pprof's parser spends
// a few hundred bytes on each.
func ManySamples(n int) []byte {
	var b []byte
	str := func(s string) { b = field(b, 6, []byte(s)) }
	str("")
	str("samples")
	str("count")
	b = field(b, 1, []byte{0x08, 1, 0x10, 2}) // sample_type {type: 1, unit: 2}
	b = field(b, 4, []byte{0x08, 1})          // location {id: 1}
	sample := field(nil, 2, []byte{0x0a, 1, 1, 0x12, 1, 1})
	b = append(b, bytes.Repeat(sample, n)...)
	return b
}

// ManyLocations returns an uncompressed pprof profile of one sample on
// one location and n-1 more locations no sample uses: about 4 bytes of
// wire each, a few hundred parsed.
func ManyLocations(n int) []byte {
	b := ManySamples(1)
	for id := 2; id <= n; id++ {
		loc := binary.AppendUvarint([]byte{0x08}, uint64(id))
		b = field(b, 4, loc)
	}
	return b
}

// field appends the protobuf field num of wire type 2 (bytes) holding v.
func field(b []byte, num int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Gzip compresses b at the best ratio.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}
