// Package testprof makes hostile pprof profiles for tests and the
// memory measurements (agent/ingest/bench): small files whose parse costs
// far more than their size.
package testprof

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"runtime"

	"google.golang.org/protobuf/encoding/protowire"
)

// Deep is the wire form of a valid profile of n samples that each
// reference its one location depth times: a stack reference is one byte
// on the wire and 24 once parsed, and gzip shrinks the repetition a
// thousandfold, so a file of kilobytes parses into hundreds of MB.
// Written directly: pprof's encoder takes seconds for millions of
// references.
func Deep(n, depth int) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // sample_type {type: 1, unit: 2}
	b = protowire.AppendBytes(b, []byte{0x08, 0x01, 0x10, 0x02})
	var sample []byte
	sample = protowire.AppendTag(sample, 1, protowire.BytesType) // location_id, packed
	sample = protowire.AppendBytes(sample, bytes.Repeat([]byte{0x01}, depth))
	sample = protowire.AppendTag(sample, 2, protowire.BytesType) // value
	sample = protowire.AppendBytes(sample, []byte{0x01})
	for range n {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, sample)
	}
	b = protowire.AppendTag(b, 4, protowire.BytesType) // location {id: 1, line {function_id: 1}}
	b = protowire.AppendBytes(b, []byte{0x08, 0x01, 0x22, 0x02, 0x08, 0x01})
	b = protowire.AppendTag(b, 5, protowire.BytesType) // function {id: 1, name: 3}
	b = protowire.AppendBytes(b, []byte{0x08, 0x01, 0x10, 0x03})
	for _, s := range []string{"", "samples", "count", "f"} {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// Gzip compresses data as runtime/pprof does.
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// Bomb is mib MiB of zeros in about a KB a MiB: gzip members of 1 MiB
// each, one after another (a gzip reader reads them as one stream),
// much quicker to make than one member.
func Bomb(mib int) []byte {
	return bytes.Repeat(Gzip(make([]byte, 1<<20)), mib)
}

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

// GzipBest compresses b at the best ratio, for measurements that quote
// the compressed size.
func GzipBest(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// Allocated is how many bytes f allocated: how a test proves that a
// refusal happened before the costly parse, by counting, not by timing.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
