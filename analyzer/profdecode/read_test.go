package profdecode

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/internal/testprof"
)

func TestReadAllCharges(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100_000)
	b := NewBudget(1 << 20)
	out, charged, err := ReadAll(bytes.NewReader(data), 0, 1<<20, b)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("ReadAll = %d bytes, %v", len(out), err)
	}
	if charged != int64(cap(out)) || b.Used() != charged {
		t.Errorf("charged %d, budget used %d, buffer %d: want all equal", charged, b.Used(), cap(out))
	}
	// Sized from the hint, a file is read in one buffer.
	out, charged, _ = ReadAll(bytes.NewReader(data), int64(len(data)), 1<<20, nil)
	if cap(out) != len(data)+1 || charged != int64(cap(out)) {
		t.Errorf("with the size as hint: buffer %d, charged %d; want %d", cap(out), charged, len(data)+1)
	}

	// Past the budget: refused as the buffer grows, nothing stays charged.
	small := NewBudget(50_000)
	if _, _, err := ReadAll(bytes.NewReader(data), 0, 1<<20, small); !errors.Is(err, ErrOverBudget) || small.Used() != 0 {
		t.Errorf("over the budget: %v, %d still charged", err, small.Used())
	}
	// Past the cap.
	if _, _, err := ReadAll(bytes.NewReader(data), 0, 99_999, b); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	if _, _, err := ReadAll(io.LimitReader(bytes.NewReader(data), 99_999), 0, 99_999, nil); err != nil {
		t.Errorf("at the cap: %v", err)
	}
}

// A gzip file of one member says what it inflates to: the buffer is
// allocated once, at that size.
func TestGunzipChargedSizesFromTrailer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	out, charged, err := GunzipCharged(testprof.Gzip(data), 1<<20, nil)
	if err != nil || !bytes.Equal(out, data) || charged != int64(len(data))+1 || cap(out) != len(data)+1 {
		t.Errorf("GunzipCharged = %d bytes in %d, charged %d, %v; want %d in one buffer", len(out), cap(out), charged, err, len(data))
	}
	// A trailer that lies about the size only costs growing the buffer.
	lying := testprof.Gzip(data)
	copy(lying[len(lying)-4:], []byte{1, 0, 0, 0})
	if _, _, err := GunzipCharged(lying, 1<<20, nil); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("a gzip whose size is wrong: %v, want the reader's error", err)
	}
}

// A gzip bomb is refused by the budget while it inflates: the budget is
// never exceeded, and a small run budget stops it long before its cap.
func TestGunzipChargedBomb(t *testing.T) {
	bomb := testprof.Gzip(make([]byte, 16<<20)) // 16 MiB of zeros in about 16 KB
	b := NewBudget(4 << 20)
	_, _, err := GunzipCharged(bomb, 256<<20, b)
	if !errors.Is(err, ErrOverBudget) || b.Used() != 0 {
		t.Fatalf("GunzipCharged = %v, %d left charged; want ErrOverBudget, 0", err, b.Used())
	}
	if _, _, err := GunzipCharged(bomb, 1<<20, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("past the cap: %v", err)
	}
	if _, _, err := GunzipCharged(bomb[:len(bomb)/2], 256<<20, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("truncated")) {
		t.Fatalf("truncated: %v", err)
	}
}
