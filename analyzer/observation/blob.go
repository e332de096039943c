package observation

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// The blob format, the one byte encoding of an observation for stores
// and wires (Save's directory is the one for people and tools):
//
//	magic "phob" | version byte
//	section: the index (JSON: meta, profile entries, series, histograms, missing)
//	section: one per profile entry, in order (pprof protobuf, uncompressed)
//
// where a section is uvarint(raw length) uvarint(stored length) and a
// zstd frame of the raw bytes. Each part is its own frame so that a
// reader wanting one kind of profile inflates the index and that profile
// only. zstd at its default level was chosen on the committed
// observations and a host's window split by process (docs/benchmarks.md):
// 7% larger than gzip's default, 9 times faster to write, 4 times to read.
const (
	blobMagic   = "phob"
	BlobVersion = 1

	// blobWindow is the largest zstd window the reader accepts: it bounds
	// the decoder's own buffers whatever a frame's header claims.
	blobWindow = 8 << 20
	// blobWriteWindow is the writer's window. The encoder keeps a history
	// of twice its window for each of its concurrent encodes, all the
	// time: at 8 MiB and two encoders that was 32 MiB of the agent's
	// heap (its heap profile), for sections of tens of KB; a 1 MiB window
	// costs a few percent of ratio on the rare profile larger than it.
	blobWriteWindow = 1 << 20
)

// blobIndex is the first section.
type blobIndex struct {
	Meta       Meta        `json:"meta"`
	Profiles   []Profile   `json:"profiles"`
	Series     []Series    `json:"series"`
	Histograms []Histogram `json:"histograms"`
	Missing    []Missing   `json:"missing"`
}

var (
	blobEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(blobWriteWindow), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	blobDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(blobWindow))
		if err != nil {
			panic(err) // the options are constant
		}
		return d
	}}
)

// Marshal encodes o as a blob: self-describing (a magic and a version),
// compressed, and read back by Unmarshal within a budget. Point times are
// kept to the millisecond, as Save keeps them; profiles byte for byte.
func Marshal(o *Observation) ([]byte, error) {
	ix := blobIndex{Meta: o.Meta, Profiles: make([]Profile, len(o.Profiles)),
		Series: o.Series, Histograms: o.Histograms, Missing: o.Missing}
	raws := make([][]byte, len(o.Profiles))
	for i, p := range o.Profiles {
		if p.Profile == nil {
			return nil, fmt.Errorf("encoding observation: profile %d (%s) is nil", i, p.Kind)
		}
		var buf bytes.Buffer
		if err := p.Profile.WriteUncompressed(&buf); err != nil {
			return nil, fmt.Errorf("encoding observation: profile %d (%s): %w", i, p.Kind, err)
		}
		raws[i] = buf.Bytes()
		p.Profile = nil
		ix.Profiles[i] = p
	}
	head, err := json.Marshal(ix)
	if err != nil {
		return nil, fmt.Errorf("encoding observation: %w", err)
	}
	out := append([]byte(blobMagic), BlobVersion)
	out = appendSection(out, head)
	for _, r := range raws {
		out = appendSection(out, r)
	}
	return out, nil
}

func appendSection(out, raw []byte) []byte {
	frame := blobEncoder.EncodeAll(raw, nil)
	out = binary.AppendUvarint(out, uint64(len(raw)))
	out = binary.AppendUvarint(out, uint64(len(frame)))
	return append(out, frame...)
}

// IsBlob reports whether b starts as a blob of any version.
func IsBlob(b []byte) bool { return bytes.HasPrefix(b, []byte(blobMagic)) }

// Unmarshal decodes a blob Marshal wrote, within opt as LoadWith reads a
// directory: each inflated section is charged to opt.Budget while it is
// in memory, and each parsed profile (its cost counted before it is
// parsed) for as long as the observation holds it. Errors wrap
// ErrNotObservation, ErrVersion or ErrDamaged, or profdecode's
// ErrTooLarge or ErrOverBudget; bytes that are not a sound blob are an
// error, never a panic.
func Unmarshal(b []byte, opt LoadOptions) (*Observation, error) {
	return unmarshal(b, opt, nil)
}

// UnmarshalKinds is Unmarshal keeping only the profiles of the given
// kinds (none: no profile): the others are skipped without being
// inflated or parsed, which is what a query for one kind of profile
// over many windows wants.
func UnmarshalKinds(b []byte, opt LoadOptions, kinds ...ProfileKind) (*Observation, error) {
	return unmarshal(b, opt, func(k ProfileKind) bool { return slices.Contains(kinds, k) })
}

func unmarshal(b []byte, opt LoadOptions, want func(ProfileKind) bool) (*Observation, error) {
	if !IsBlob(b) {
		return nil, fmt.Errorf("observation blob: %w (no %q magic)", ErrNotObservation, blobMagic)
	}
	if len(b) < len(blobMagic)+1 {
		return nil, fmt.Errorf("observation blob: %w: no version", ErrDamaged)
	}
	if v := b[len(blobMagic)]; v != BlobVersion {
		return nil, fmt.Errorf("observation blob: %w %d (this perfhound reads version %d)", ErrVersion, v, BlobVersion)
	}
	r := blobReader{rest: b[len(blobMagic)+1:], budget: opt.Budget}
	head, charged, err := r.section(maxIndexBytes)
	defer func() { opt.Budget.Refund(charged) }()
	if err != nil {
		return nil, fmt.Errorf("observation blob: index: %w", err)
	}
	var ix blobIndex
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("observation blob: index: %w: %v", ErrDamaged, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("observation blob: index: %w: data after its end", ErrDamaged)
	}
	opt.Budget.Refund(charged)
	charged = 0

	o := &Observation{Meta: ix.Meta, Series: ix.Series, Histograms: ix.Histograms, Missing: ix.Missing}
	var kept int64
	fail := func(err error) (*Observation, error) {
		opt.Budget.Refund(kept)
		return nil, err
	}
	lim := opt.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = maxProfileBytes
	}
	for i, e := range ix.Profiles {
		name := fmt.Sprintf("observation blob: profile %d (%s)", i, e.Kind)
		if want != nil && !want(e.Kind) {
			if err := r.skip(); err != nil {
				return fail(fmt.Errorf("%s: %w", name, err))
			}
			continue
		}
		p, cost, err := r.profile(lim)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
		kept += cost
		e.Profile = p
		o.Profiles = append(o.Profiles, e)
	}
	if len(r.rest) != 0 {
		return fail(fmt.Errorf("observation blob: %w: %d bytes after the last profile", ErrDamaged, len(r.rest)))
	}
	return o, nil
}

// blobReader walks a blob's sections.
type blobReader struct {
	rest   []byte
	budget *profdecode.Budget
}

// header reads a section's lengths and returns its stored bytes.
func (r *blobReader) header() (raw uint64, frame []byte, err error) {
	raw, n := binary.Uvarint(r.rest)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: truncated section", ErrDamaged)
	}
	size, m := binary.Uvarint(r.rest[n:])
	if m <= 0 || size > uint64(len(r.rest)-n-m) {
		return 0, nil, fmt.Errorf("%w: truncated section", ErrDamaged)
	}
	frame = r.rest[n+m : n+m+int(size)]
	r.rest = r.rest[n+m+int(size):]
	return raw, frame, nil
}

func (r *blobReader) skip() error {
	_, _, err := r.header()
	return err
}

// section inflates the next section, refusing more than limit bytes, and
// returns what stays charged for them.
func (r *blobReader) section(limit int64) ([]byte, int64, error) {
	raw, frame, err := r.header()
	if err != nil {
		return nil, 0, err
	}
	if raw > uint64(limit) {
		return nil, 0, fmt.Errorf("%w: section of %d bytes, over %d", profdecode.ErrTooLarge, raw, limit)
	}
	d := blobDecoders.Get().(*zstd.Decoder)
	defer blobDecoders.Put(d)
	// A plain reader: the decoder inflates a *bytes.Buffer at once,
	// outside of ReadAll's charged growth.
	if err := d.Reset(struct{ io.Reader }{bytes.NewReader(frame)}); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	defer d.Reset(nil) // drop the reference to frame
	data, charged, err := profdecode.ReadAll(d, int64(raw), int64(raw), r.budget)
	if err != nil {
		if errors.Is(err, profdecode.ErrTooLarge) {
			// The frame inflates past the length it was written with.
			return nil, 0, fmt.Errorf("%w: section longer than its %d bytes", ErrDamaged, raw)
		}
		if errors.Is(err, profdecode.ErrOverBudget) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if uint64(len(data)) != raw {
		r.budget.Refund(charged)
		return nil, 0, fmt.Errorf("%w: section of %d bytes, %d written", ErrDamaged, len(data), raw)
	}
	return data, charged, nil
}

// profile inflates and parses the next section within lim; the parsed
// profile's cost stays charged and is returned.
func (r *blobReader) profile(lim profdecode.Limits) (*profile.Profile, int64, error) {
	data, charged, err := r.section(lim.MaxBytes)
	defer func() { r.budget.Refund(charged) }()
	if err != nil {
		return nil, 0, err
	}
	if profdecode.IsGzip(data) {
		// Marshal writes profiles uncompressed: a gzipped one would be
		// inflated by Decode outside of this section's bound.
		return nil, 0, fmt.Errorf("%w: gzip inside the blob", ErrDamaged)
	}
	p, cost, err := profdecode.Decode(data, lim, r.budget)
	if errors.Is(err, profdecode.ErrTooLarge) || errors.Is(err, profdecode.ErrOverBudget) {
		return nil, 0, err // sound, only too costly to hold
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return p, cost.Memory(), nil
}
