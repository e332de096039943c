package profdecode

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ReadAll reads r to its end into one buffer, refusing more than limit
// bytes with ErrTooLarge. It charges b for the buffer before allocating
// it and before each time it grows, so that files read and inflated in
// parallel stay within the run's budget while they are in memory, not
// only once parsed. hint sizes the first buffer (a file's size; 0 when
// not known). It returns the data and what stays charged for it: the
// caller refunds that once it drops the data. On an error nothing stays
// charged.
func ReadAll(r io.Reader, hint, limit int64, b *Budget) ([]byte, int64, error) {
	var charged int64
	fail := func(err error) ([]byte, int64, error) {
		b.Refund(charged)
		return nil, 0, err
	}
	// grow moves buf to a new buffer of room for need bytes. The old one
	// is garbage afterwards: its charge goes back once copied.
	grow := func(buf []byte, need int64) ([]byte, error) {
		n := min(need, limit+1) // limit+1: room to see that a file is too large
		if err := b.Charge(n); err != nil {
			return nil, err
		}
		nb := make([]byte, len(buf), n)
		copy(nb, buf)
		b.Refund(int64(cap(buf)))
		charged += n - int64(cap(buf))
		return nb, nil
	}
	// hint+1: a file read whole then sees its end without growing.
	buf, err := grow(nil, max(hint+1, 512))
	if err != nil {
		return fail(err)
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit))
			}
			if buf, err = grow(buf, 2*int64(cap(buf))); err != nil {
				return fail(err)
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit))
			}
			return buf, charged, nil
		}
		if err != nil {
			return fail(err)
		}
	}
}

// GunzipCharged is Gunzip charging b for the output as it grows (see
// ReadAll), and returning what stays charged for it.
func GunzipCharged(data []byte, max int64, b *Budget) ([]byte, int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, 0, fmt.Errorf("decompressing gzip: %w", err)
	}
	out, charged, err := ReadAll(zr, inflatedSize(data, max), max, b)
	switch {
	case err == nil:
		return out, charged, nil
	case errors.Is(err, ErrTooLarge):
		return nil, 0, fmt.Errorf("%w: decompresses past %d bytes", ErrTooLarge, max)
	case errors.Is(err, ErrOverBudget):
		return nil, 0, fmt.Errorf("decompressing gzip: %w", err)
	}
	// io.ErrUnexpectedEOF is the usual symptom of a cut-off download.
	return nil, 0, fmt.Errorf("decompressing gzip (truncated?): %w", err)
}

// inflatedSize guesses what data inflates to, to size the buffer once: a
// gzip member ends with its size (modulo 4 GiB), exact for the usual file
// of one member; more members only make the buffer grow. A size past max
// or below the compressed size is not believed.
func inflatedSize(data []byte, max int64) int64 {
	guess := 2 * int64(len(data))
	if len(data) >= 18 { // header and trailer
		if n := int64(binary.LittleEndian.Uint32(data[len(data)-4:])); n >= int64(len(data))/2 && n <= max {
			guess = n
		}
	}
	return min(guess, max)
}
