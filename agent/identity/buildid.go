package identity

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/perfhound/perfhound/bpf/symbolize"
)

// ErrNoBuildID says an executable carries neither a Go nor a GNU build ID.
var ErrNoBuildID = errors.New("no build ID note")

const (
	// maxNoteBytes bounds what is read of one note section or segment:
	// build IDs are tens of bytes, a hostile file's notes are not read
	// in full.
	maxNoteBytes = 64 << 10
	// maxGoIDLen and maxGNUIDLen bound the IDs kept (Go's is 83 bytes,
	// GNU's 20 with SHA-1): longer ones are not build IDs.
	maxGoIDLen  = 256
	maxGNUIDLen = 64
	// noteGoBuildID and noteGNUBuildID are the notes' types: the Go
	// linker's ELF_NOTE_GOBUILDID_TAG under the name "Go", and
	// NT_GNU_BUILD_ID under "GNU".
	noteGoBuildID  = 4
	noteGNUBuildID = 3
)

// readBuildID reads an ELF executable's build ID with debug/elf: the Go
// build ID (the .note.go.buildid note, as `go tool buildid` prints it)
// when there is one, else the GNU build ID in hex (.note.gnu.build-id, as
// `readelf -n` prints it). Notes are read from the SHT_NOTE sections, or
// from the PT_NOTE segments of a file stripped of its section headers.
//
// debug/elf says it is not hardened against adversarial input, and any
// user can run any file: a panic in it is an error here, not the
// agent's end.
func readBuildID(r io.ReaderAt) (id string, err error) {
	defer func() {
		if p := recover(); p != nil {
			id, err = "", fmt.Errorf("reading ELF: %v", p)
		}
	}()
	ef, err := elf.NewFile(r)
	if err != nil {
		return "", err
	}
	var goID, gnuID string
	scan := func(rd io.Reader) {
		data, _ := io.ReadAll(io.LimitReader(rd, maxNoteBytes))
		g, n := parseNotes(data, ef.ByteOrder)
		if goID == "" {
			goID = g
		}
		if gnuID == "" {
			gnuID = n
		}
	}
	sections := false
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOTE {
			sections = true
			scan(s.Open())
		}
	}
	if !sections {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_NOTE {
				scan(p.Open())
			}
		}
	}
	switch {
	case goID != "":
		return goID, nil
	case gnuID != "":
		return gnuID, nil
	}
	return "", ErrNoBuildID
}

// parseNotes returns the first Go and GNU build IDs of ELF notes
// (symbolize.Notes walks them). A Go ID that is not printable ASCII, and
// IDs over their bound, are skipped: they would become label values.
func parseNotes(data []byte, bo binary.ByteOrder) (goID, gnuID string) {
	symbolize.Notes(data, bo, func(name string, typ uint32, desc []byte) {
		switch {
		case name == "Go" && typ == noteGoBuildID && goID == "" && len(desc) > 0 && len(desc) <= maxGoIDLen && printable(desc):
			goID = string(desc)
		case name == "GNU" && typ == noteGNUBuildID && gnuID == "" && len(desc) > 0 && len(desc) <= maxGNUIDLen:
			gnuID = hex.EncodeToString(desc)
		}
	})
	return
}

func printable(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
