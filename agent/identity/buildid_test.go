package identity

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func readFileBuildID(t *testing.T, file string) (string, error) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readBuildID(f)
}

// TestGoBuildIDIsGoToolBuildID builds a program, then another one into
// the same path: each build ID is what `go tool buildid` prints, and they
// differ.
func TestGoBuildIDIsGoToolBuildID(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prog")
	var ids []string
	for _, v := range []string{"one", "two"} {
		buildGo(t, out, v)
		got, err := readFileBuildID(t, out)
		if err != nil {
			t.Fatal(err)
		}
		if want := goBuildID(t, out); got != want {
			t.Errorf("build %s: %q, go tool buildid says %q", v, got, want)
		}
		ids = append(ids, got)
	}
	if ids[0] == ids[1] {
		t.Errorf("two sources, one build ID %q", ids[0])
	}
}

// TestGoBuildIDBeforeGNU: a Go program linked with a GNU build ID too
// (-B gobuildid) is still versioned by its Go build ID.
func TestGoBuildIDBeforeGNU(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prog")
	buildGo(t, out, "gnu-too")
	// Relink with both notes.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module prog\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	cmd := exec.Command("go", "build", "-ldflags=-B=gobuildid", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("go build -ldflags=-B=gobuildid: %v\n%s", err, b)
	}
	gnu := readelfBuildID(t, out)
	got, err := readFileBuildID(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if want := goBuildID(t, out); got != want || got == gnu {
		t.Errorf("build ID %q, want the Go one %q (GNU %q)", got, want, gnu)
	}
}

// TestGNUBuildIDOfC builds a C program with gcc: its build ID is the one
// readelf -n shows.
func TestGNUBuildIDOfC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("no gcc: %v", err)
	}
	dir := t.TempDir()
	src, out := filepath.Join(dir, "main.c"), filepath.Join(dir, "cprog")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(gcc, "-Wl,--build-id", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	got, err := readFileBuildID(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if want := readelfBuildID(t, out); got != want {
		t.Errorf("build ID %q, readelf -n says %q", got, want)
	}
	if b, err := exec.Command("file", out).CombinedOutput(); err == nil && !strings.Contains(string(b), "BuildID[sha1]="+got) {
		t.Errorf("file(1) says %s, want BuildID[sha1]=%s", b, got)
	}
}

// TestBuildIDOfNoELF: a script, an empty file and every truncation of a
// real executable's head are errors, never a panic.
func TestBuildIDOfNoELF(t *testing.T) {
	for _, data := range [][]byte{[]byte("#!/bin/sh\necho hi\n"), nil} {
		if id, err := readBuildID(bytes.NewReader(data)); err == nil {
			t.Errorf("%q: build ID %q", data, id)
		}
	}
	exe, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	for n := 0; n < 8192 && n < len(exe); n += 61 {
		readBuildID(bytes.NewReader(exe[:n]))
	}
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := readBuildID(f); err != nil {
		t.Errorf("the test binary's own build ID: %v", err)
	}
}

// FuzzParseNotes: any note bytes parse without panicking into IDs of
// the kept forms.
//
//	go test ./agent/identity -run '^$' -fuzz '^FuzzParseNotes$' -fuzztime 60s
func FuzzParseNotes(f *testing.F) {
	note := func(name string, typ uint32, desc []byte) []byte {
		var b bytes.Buffer
		n := append([]byte(name), 0)
		binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(n)), uint32(len(desc)), typ})
		b.Write(n)
		b.Write(make([]byte, (4-len(n)%4)%4))
		b.Write(desc)
		b.Write(make([]byte, (4-len(desc)%4)%4))
		return b.Bytes()
	}
	f.Add(append(note("GNU", 3, []byte{1, 2, 3, 4}), note("Go", 4, []byte("abc/def"))...))
	f.Add(note("Go", 4, []byte("x\x00y")))
	if b, err := os.ReadFile("/sys/kernel/notes"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		goID, gnu := parseNotes(data, binary.LittleEndian)
		if len(goID) > maxGoIDLen || !printable([]byte(goID)) {
			t.Errorf("Go ID %q", goID)
		}
		if len(gnu) > 2*maxGNUIDLen {
			t.Errorf("GNU ID %q", gnu)
		}
	})
}
