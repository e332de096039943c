//go:build linux

package symbolize

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// Test programs are built once per test binary, in buildDir, made by
// TestMain. Each runs the known function in a loop and exits by itself after
// the number of seconds in its first argument (default 5).

var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "symbolize-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const goFunc = "main.perfhoundHotLoop"

const goSource = `package main

import (
	"os"
	"strconv"
	"time"
)

var sink int

//go:noinline
func perfhoundHotLoop(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i
	}
	return s
}

func main() {
	secs := 5.0
	if len(os.Args) > 1 {
		secs, _ = strconv.ParseFloat(os.Args[1], 64)
	}
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	os.Stdout.WriteString("ready\n")
	for time.Now().Before(deadline) {
		sink += perfhoundHotLoop(10000)
		time.Sleep(time.Millisecond)
	}
}
`

const cFunc = "perfhound_hot_loop"

const cSource = `#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void perfhound_hot_loop(unsigned long n) {
	for (unsigned long i = 0; i < n; i++)
		sink += i * i;
}

int main(int argc, char **argv) {
	double secs = argc > 1 ? atof(argv[1]) : 5;
	struct timespec t0, t, nap = {0, 1000000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		perfhound_hot_loop(100000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 > secs)
			return 0;
		nanosleep(&nap, NULL);
	}
}
`

type goBins struct {
	def, stripped, pie string
	err                error
}

type cBins struct {
	plain, dyn, stripped string // -O1; -rdynamic; -rdynamic -s
	bare                 string // -s: no symbol names the program's functions
	err                  error
}

var (
	goOnce  sync.Once
	goBuilt goBins
	cOnce   sync.Once
	cBuilt  cBins
)

func needGo(t *testing.T) goBins {
	t.Helper()
	goOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			goBuilt.err = fmt.Errorf("skipped: the go command is not in PATH: %v", err)
			return
		}
		dir := filepath.Join(buildDir, "gosrc")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			goBuilt.err = err
			return
		}
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hot\n\ngo 1.21\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "main.go"), []byte(goSource), 0o644)
		goBuilt.def = filepath.Join(buildDir, "go-default")
		goBuilt.stripped = filepath.Join(buildDir, "go-stripped")
		goBuilt.pie = filepath.Join(buildDir, "go-pie")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, args := range [][]string{
			{"-o", goBuilt.def},
			{"-ldflags=-s -w", "-o", goBuilt.stripped},
			{"-buildmode=pie", "-o", goBuilt.pie},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(gobin, append([]string{"build", "-buildvcs=false"}, args...)...)
				cmd.Dir = dir
				// Few imports and the test's own environment keep a
				// cold build cache's cost down (the PIE rebuilds what
				// it imports).
				cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("go build %v: %v\n%s", args, err, out)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				goBuilt.err = err
				return
			}
		}
	})
	if goBuilt.err != nil {
		if strings.HasPrefix(goBuilt.err.Error(), "skipped") {
			t.Skip(goBuilt.err)
		}
		t.Fatal(goBuilt.err)
	}
	return goBuilt
}

func needC(t *testing.T) cBins {
	t.Helper()
	cOnce.Do(func() {
		cc, err := exec.LookPath("gcc")
		if err != nil {
			cBuilt.err = fmt.Errorf("skipped: gcc is not in PATH: %v", err)
			return
		}
		src := filepath.Join(buildDir, "hot.c")
		if err := os.WriteFile(src, []byte(cSource), 0o644); err != nil {
			cBuilt.err = err
			return
		}
		cBuilt.plain = filepath.Join(buildDir, "c-plain")
		cBuilt.dyn = filepath.Join(buildDir, "c-dyn")
		cBuilt.stripped = filepath.Join(buildDir, "c-stripped")
		cBuilt.bare = filepath.Join(buildDir, "c-bare")
		for _, args := range [][]string{
			{"-o", cBuilt.plain},
			{"-rdynamic", "-o", cBuilt.dyn},
			{"-rdynamic", "-s", "-o", cBuilt.stripped},
			{"-s", "-o", cBuilt.bare},
		} {
			cmd := exec.Command(cc, append([]string{"-O1", "-fno-omit-frame-pointer", src}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				cBuilt.err = fmt.Errorf("gcc %v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if cBuilt.err != nil {
		if strings.HasPrefix(cBuilt.err.Error(), "skipped") {
			t.Skip(cBuilt.err)
		}
		t.Fatal(cBuilt.err)
	}
	return cBuilt
}

// start runs a test program until it says it is ready (its libraries are
// mapped), and kills it when the test ends.
func start(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start", path)
	}
	return cmd
}

// stop kills cmd and waits until its PID is gone.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Kill()
	cmd.Wait()
}

// symbolValue returns the link-time address of a function symbol of the
// ELF file at path (.symtab, then .dynsym).
func symbolValue(t *testing.T, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	dyn, _ := f.DynamicSymbols()
	for _, s := range append(syms, dyn...) {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

// runtimeAddr turns a link-time address of the ELF file at path into the
// address where process pid runs it, from the PT_LOAD segment holding it and
// the process's mapping of that file offset.
func runtimeAddr(t *testing.T, pid int, path string, vaddr uint64) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fileOff uint64
	found := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			fileOff, found = vaddr-p.Vaddr+p.Off, true
		}
	}
	if !found {
		t.Fatalf("%s: %#x is in no PT_LOAD segment", path, vaddr)
	}
	maps, err := readMaps(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if m.path == path && fileOff >= m.offset && fileOff < m.offset+m.end-m.start {
			return m.start + fileOff - m.offset
		}
	}
	t.Fatalf("process %d does not map %s at file offset %#x", pid, path, fileOff)
	return 0
}

// mappingOf returns the first executable mapping of process pid whose path
// satisfies match.
func mappingOf(t *testing.T, pid int, match func(string) bool) procMapping {
	t.Helper()
	maps, err := readMaps(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if match(m.path) {
			return m
		}
	}
	t.Fatalf("process %d has no such mapping", pid)
	return procMapping{}
}

var cpuTypes = []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}

// profileOf builds a profile of the given samples and checks it is valid
// and survives a write and a parse.
func profileOf(t *testing.T, s *Symbolizer, samples ...Sample) *profile.Profile {
	t.Helper()
	b := s.NewBuilder(cpuTypes, &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, 10_000_000)
	for _, x := range samples {
		b.Add(x)
	}
	p := b.Profile()
	if err := p.CheckValid(); err != nil {
		t.Fatalf("CheckValid: %v", err)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatalf("writing profile: %v", err)
	}
	if _, err := profile.Parse(&buf); err != nil {
		t.Fatalf("parsing written profile: %v", err)
	}
	return p
}

// frame describes a location for assertions: its first line's function,
// file and line, and its mapping's file.
type frame struct {
	fn, file string
	line     int64
	mapping  string
	addr     uint64
}

func frameOf(l *profile.Location) frame {
	f := frame{addr: l.Address}
	if l.Mapping != nil {
		f.mapping = l.Mapping.File
	}
	if len(l.Line) > 0 {
		f.fn = l.Line[0].Function.Name
		f.file = l.Line[0].Function.Filename
		f.line = l.Line[0].Line
	}
	return f
}

// gnuBuildID reads the .note.gnu.build-id section directly (16 bytes of
// note header and "GNU\0", then the ID), as `readelf -n` shows it.
func gnuBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".note.gnu.build-id")
	if sec == nil {
		t.Fatalf("%s: no .note.gnu.build-id", path)
	}
	data, err := sec.Data()
	if err != nil || len(data) < 16 || string(data[12:16]) != "GNU\x00" {
		t.Fatalf("%s: unexpected build-id note %x (%v)", path, data, err)
	}
	return fmt.Sprintf("%x", data[16:])
}

// fakeProc is a process that exists only as files: /proc/4242 under a
// temporary procfs, with a copy of the C test program at root/usr/bin/hot.
// Tests write its stat and maps themselves.
type fakeProc struct {
	procfs, dir, bin string
	ino              uint64 // the copy's inode
	start, end, off  uint64 // its executable segment, mapped at fakeBase
	major, minor     uint32
}

const fakeBase = 0x555555554000

func newFakeProc(t *testing.T) fakeProc {
	t.Helper()
	bins := needC(t)
	f := fakeProc{procfs: t.TempDir()}
	f.dir = filepath.Join(f.procfs, "4242")
	f.bin = filepath.Join(f.dir, "root", "usr", "bin", "hot")
	os.MkdirAll(filepath.Dir(f.bin), 0o755)
	data, err := os.ReadFile(bins.plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	f.ino = st.Ino
	f.major, f.minor = devOf(st.Dev)
	ef, err := elf.Open(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			f.start, f.end = fakeBase+p.Vaddr&^0xfff, fakeBase+(p.Vaddr+p.Memsz+0xfff)&^0xfff
			f.off = p.Off &^ 0xfff
		}
	}
	return f
}

// mapsLine is the maps line of the program's text, naming inode.
func (f fakeProc) mapsLine(inode uint64) string {
	return fmt.Sprintf("%x-%x r-xp %08x %02x:%02x %d   /usr/bin/hot\n", f.start, f.end, f.off, f.major, f.minor, inode)
}
