// Package testprof makes hostile pprof profiles for tests: small files
// whose parse costs far more than their size.
package testprof

import (
	"bytes"
	"compress/gzip"

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
