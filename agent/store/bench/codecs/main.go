// Command codecs compares gzip and zstd (github.com/klauspost/compress) on
// the sections of observation.Marshal (the index JSON and each profile,
// uncompressed), for committed observations and a host window split by
// process, to choose the blob codec on measurement:
//
//	go run ./agent/store/bench/codecs fixtures/observations/*/ agent/store/testdata/host-window
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
)

func sections(o *observation.Observation) [][]byte {
	ix, _ := json.Marshal(struct {
		M observation.Meta
		S []observation.Series
		H []observation.Histogram
		X []observation.Missing
	}{o.Meta, o.Series, o.Histograms, o.Missing})
	out := [][]byte{ix}
	for _, p := range o.Profiles {
		var b bytes.Buffer
		p.Profile.WriteUncompressed(&b)
		out = append(out, b.Bytes())
	}
	return out
}

type codec struct {
	name string
	enc  func([]byte) []byte
	dec  func([]byte) []byte
}

func main() {
	var obs []*observation.Observation
	for _, d := range os.Args[1:] {
		o, err := observation.Load(d)
		if err != nil {
			panic(err)
		}
		obs = append(obs, o)
		if o.Meta.Target.Kind == "host" {
			h := procrank.NewHost(o)
			for _, p := range h.Rank() {
				s := h.Split(p.PID)
				for i := range s.Profiles {
					s.Profiles[i].Profile = s.Profiles[i].Profile.Compact()
				}
				obs = append(obs, s)
			}
		}
	}
	zf, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	zd, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	zb, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	dec, _ := zstd.NewReader(nil)
	gz := func(level int, k bool) func([]byte) []byte {
		return func(b []byte) []byte {
			var o bytes.Buffer
			if k {
				w, _ := kgzip.NewWriterLevel(&o, level)
				w.Write(b)
				w.Close()
			} else {
				w, _ := gzip.NewWriterLevel(&o, level)
				w.Write(b)
				w.Close()
			}
			return o.Bytes()
		}
	}
	gunz := func(b []byte) []byte { r, _ := gzip.NewReader(bytes.NewReader(b)); o, _ := io.ReadAll(r); return o }
	zdec := func(b []byte) []byte { o, _ := dec.DecodeAll(b, nil); return o }
	codecs := []codec{
		{"gzip-std-default", gz(gzip.DefaultCompression, false), gunz},
		{"gzip-std-speed", gz(gzip.BestSpeed, false), gunz},
		{"gzip-klauspost-default", gz(gzip.DefaultCompression, true), gunz},
		{"zstd-fastest", func(b []byte) []byte { return zf.EncodeAll(b, nil) }, zdec},
		{"zstd-default", func(b []byte) []byte { return zd.EncodeAll(b, nil) }, zdec},
		{"zstd-better", func(b []byte) []byte { return zb.EncodeAll(b, nil) }, zdec},
	}
	var all [][]byte
	var raw int
	for _, o := range obs {
		for _, s := range sections(o) {
			all = append(all, s)
			raw += len(s)
		}
	}
	fmt.Printf("%d observations, %d sections, raw %d bytes\n", len(obs), len(all), raw)
	for _, c := range codecs {
		var encT, decT []time.Duration
		var size int
		for rep := 0; rep < 7; rep++ {
			size = 0
			t0 := time.Now()
			var enc [][]byte
			for _, s := range all {
				e := c.enc(s)
				enc = append(enc, e)
				size += len(e)
			}
			encT = append(encT, time.Since(t0))
			t0 = time.Now()
			for i, e := range enc {
				if d := c.dec(e); !bytes.Equal(d, all[i]) {
					panic(c.name)
				}
			}
			decT = append(decT, time.Since(t0))
		}
		sort.Slice(encT, func(i, j int) bool { return encT[i] < encT[j] })
		sort.Slice(decT, func(i, j int) bool { return decT[i] < decT[j] })
		fmt.Printf("%-24s size %8d (%.3f of raw)  encode %8v  decode %8v (medians of 7)\n", c.name, size, float64(size)/float64(raw), encT[3], decT[3])
	}
}
