//go:build linux

package symbolize

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// TestMemoryCompile measures what caching the Go toolchain's compile binary
// (26 MB, 20k functions, an 8 MB .gopclntab) costs: heap retained and RSS,
// and checks it stays a small fraction of the agent's 50 MiB target.
func TestMemoryCompile(t *testing.T) {
	out, err := exec.Command("go", "env", "GOTOOLDIR").Output()
	if err != nil {
		t.Skipf("go env GOTOOLDIR: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "compile")
	f, err := os.Open(path)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := New(Options{})
	defer s.Close()

	heap0, rss0 := heapInUse(), rssBytes(t)
	o, err := s.loadFile(f, "")
	if err != nil || o.err != nil {
		t.Fatalf("loading %s: %v %v", path, err, o.err)
	}
	heap1, rss1 := heapInUse(), rssBytes(t)
	// Resolve every function once, with its line: the pages of the line
	// table touched stay mapped (file-backed) until the kernel reclaims them.
	n := 0
	s.mu.Lock()
	for i := range o.syms.len() {
		if _, file, _, ok := o.symbolize(o.syms.start(i)); ok && file != "" {
			n++
		}
	}
	s.mu.Unlock()
	heap2, rss2 := heapInUse(), rssBytes(t)
	t.Logf("%s: %d symbols, %d with file:line; estimate %d KiB", path, o.syms.len(), n, o.bytes()>>10)
	t.Logf("symtab %d KiB, line table %d KiB (estimates)", o.syms.bytes()>>10, o.lines.heapBytes()>>10)
	for _, m := range []struct {
		when string
		heap uint64
		rss  [3]int64
	}{{"after parsing", heap1, rss1}, {"after resolving every function", heap2, rss2}} {
		t.Logf("%s: heap +%d KiB; RSS +%d KiB (anon +%d KiB, file +%d KiB)", m.when, int64(m.heap-heap0)>>10,
			(m.rss[0]-rss0[0])>>10, (m.rss[1]-rss0[1])>>10, (m.rss[2]-rss0[2])>>10)
	}
	if n < o.syms.len()/2 {
		t.Errorf("only %d of %d functions have file:line", n, o.syms.len())
	}
	if d := int64(heap1 - heap0); d > 8<<20 {
		t.Errorf("caching compile retains %d KiB of heap, want under 8 MiB", d>>10)
	}
	runtime.KeepAlive(o)
}

func heapInUse() uint64 {
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rssBytes returns VmRSS, RssAnon and RssFile of this process.
func rssBytes(t *testing.T) (rss [3]int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		for i, key := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
			if v, ok := bytes.CutPrefix(l, []byte(key)); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
				rss[i] = kb << 10
			}
		}
	}
	return rss
}

// TestTrim checks that the pages of a Go line table read by lookups leave
// the RSS when the Symbolizer is trimmed (bpf.Session does once its
// round of profiles is built).
func TestTrim(t *testing.T) {
	out, err := exec.Command("go", "env", "GOTOOLDIR").Output()
	if err != nil {
		t.Skipf("go env GOTOOLDIR: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "compile"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := New(Options{})
	defer s.Close()
	o, err := s.loadFile(f, "")
	if err != nil {
		t.Fatal(err)
	}
	before := rssBytes(t)[2]
	s.mu.Lock()
	for i := range o.syms.len() {
		o.symbolize(o.syms.start(i))
	}
	s.mu.Unlock()
	touched := rssBytes(t)[2]
	s.Trim()
	after := rssBytes(t)[2]
	t.Logf("file-backed RSS: %d KiB, %d KiB after resolving every function, %d KiB after Trim", before>>10, touched>>10, after>>10)
	if touched-before < 1<<20 || after-before > (touched-before)/4 {
		t.Errorf("file-backed RSS %d → %d → %d KiB: want a rise of over 1 MiB, mostly given back", before>>10, touched>>10, after>>10)
	}
}

// An object's memo answers as the tables do, stays within two generations
// of memoMax whatever the addresses asked, and keeps the addresses asked
// again and again through the turnover; the object's size stays what it
// was when cached.
func TestObjectMemo(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := New(Options{})
	defer s.Close()
	o, err := s.loadFile(f, "")
	if err != nil || o.err != nil {
		t.Fatalf("loading %s: %v %v", exe, err, o.err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := o.syms.len()
	if n < 2*memoMax {
		t.Skipf("%s has %d symbols", exe, n)
	}
	size := o.bytes() // what the cache added for it, and takes off when it drops it
	hot := o.syms.start(0)
	o.symbolize(hot)
	for round := range 2 {
		for i := 1; i < 2*memoMax; i++ {
			addr := o.syms.start(i)
			name, file, line, ok := o.symbolize(addr)
			wname, wfile, wline, wok := o.resolve(addr)
			if name != wname || file != wfile || line != wline || ok != wok {
				t.Fatalf("round %d, %#x: memo %s %s:%d %v, tables %s %s:%d %v", round, addr, name, file, line, ok, wname, wfile, wline, wok)
			}
			if len(o.memo) > memoMax || len(o.old) > memoMax {
				t.Fatalf("memo holds %d and %d entries", len(o.memo), len(o.old))
			}
			_, inMemo := o.memo[hot]
			_, inOld := o.old[hot]
			if !inMemo && !inOld {
				t.Fatalf("round %d, lookup %d: an address asked every %d lookups fell out of the memo", round, i, memoMax/2)
			}
			if i%(memoMax/2) == 0 {
				o.symbolize(hot) // asked every window
			}
		}
	}
	if got := o.bytes(); got != size {
		t.Errorf("the object's size moved from %d to %d bytes with lookups: the cache's count would drift", size, got)
	}
}
