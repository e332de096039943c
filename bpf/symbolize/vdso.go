//go:build linux

package symbolize

import (
	"bytes"
	"debug/elf"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
)

// VDSOMapping is the pprof mapping file name of the vDSO.
const VDSOMapping = "[vdso]"

// maxVDSOBytes bounds the image read: the vDSO is two or three pages.
const maxVDSOBytes = 1 << 20

// readVDSO copies the [vdso] image of pid from /proc/PID/mem.
func readVDSO(procfs string, pid int, start, end uint64) ([]byte, error) {
	if end <= start || end-start > maxVDSOBytes {
		return nil, fmt.Errorf("vdso mapping of %d bytes", end-start)
	}
	f, err := os.Open(filepath.Join(procfs, strconv.Itoa(pid), "mem"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, int64(start)); err != nil {
		return nil, fmt.Errorf("reading vdso of process %d: %w", pid, err)
	}
	return buf, nil
}

// readOwnVDSO copies this process's vDSO, which is the same image as any
// other 64-bit process's on this kernel.
func readOwnVDSO(procfs string) ([]byte, error) {
	maps, err := readMaps(filepath.Join(procfs, "self", "maps"))
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		if m.path == VDSOMapping {
			return readVDSO(procfs, os.Getpid(), m.start, m.end)
		}
	}
	return nil, fmt.Errorf("no %s mapping in %s/self/maps", VDSOMapping, procfs)
}

// identifyImage returns the cache key and build ID of an in-memory ELF
// image: the build ID when it has one, else a hash of the image.
func identifyImage(img []byte) (ef *elf.File, key, buildID string, err error) {
	ef, err = elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, "", "", fmt.Errorf("parsing vdso image: %w", err)
	}
	buildID = BuildID(ef)
	if buildID != "" {
		return ef, "b:" + buildID, buildID, nil
	}
	h := fnv.New64a()
	h.Write(img)
	return ef, fmt.Sprintf("vdso:%x", h.Sum64()), "", nil
}

// VDSOImage reads the vDSO mapped at start..end in pid (its [vdso]
// mapping) and opens it as ELF, with the key objects are cached by: its
// build ID's, or a hash of the image. The unwinder compiles its
// .eh_frame, so that a walk goes through a sample in clock_gettime.
func VDSOImage(procfs string, pid int, start, end uint64) (ef *elf.File, key string, err error) {
	img, err := readVDSO(procfs, pid, start, end)
	if err != nil {
		return nil, "", err
	}
	ef, key, _, err = identifyImage(img)
	return ef, key, err
}
