//go:build linux

package symbolize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSymtab(t *testing.T) {
	tab, dropped := newSymtab([]rawSym{
		{start: 0x1000, size: 0x10, name: "local_alias", rank: 2},
		{start: 0x1000, size: 0, name: "__global", rank: 0},
		{start: 0x1000, size: 0, name: "global", rank: 0},
		{start: 0x1100, name: "no_size"},
		{start: 0x1200, size: 0x8, name: "sized"},
		{start: 0x1300, name: "last"},
		{start: 0x1000 + 1<<33, name: "too_far"},
	})
	if dropped != 1 {
		t.Errorf("dropped %d, want 1", dropped)
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0xfff, ""},
		{0x1000, "global"}, // global over local, fewer underscores first
		{0x100f, "global"}, // the run's largest size
		{0x1010, ""},       // past the size, before the next symbol
		{0x1150, "no_size"},
		{0x1207, "sized"},
		{0x1208, ""},
		{0x9999, "last"},
	} {
		got := ""
		if i := tab.lookup(tc.addr); i >= 0 {
			got = tab.symName(i)
		}
		if got != tc.want {
			t.Errorf("lookup(%#x) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if empty, _ := newSymtab(nil); empty.lookup(1) != -1 {
		t.Error("empty table found a symbol")
	}
}

func TestParseMapsLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want procMapping
		exec bool
	}{
		{"55d5e0a00000-55d5e0a21000 r-xp 00021000 fe:01 1234567                    /usr/bin/my prog",
			procMapping{start: 0x55d5e0a00000, end: 0x55d5e0a21000, offset: 0x21000, devMajor: 0xfe, devMinor: 1, inode: 1234567, path: "/usr/bin/my prog"}, true},
		{"7f0000000000-7f0000001000 r-xp 00000000 08:02 42 /tmp/x.so (deleted)",
			procMapping{start: 0x7f0000000000, end: 0x7f0000001000, devMajor: 8, devMinor: 2, inode: 42, path: "/tmp/x.so", deleted: true}, true},
		{"7ffd1b9f0000-7ffd1b9f2000 r-xp 00000000 00:00 0                          [vdso]",
			procMapping{start: 0x7ffd1b9f0000, end: 0x7ffd1b9f2000, path: "[vdso]"}, true},
		{"7f1c00000000-7f1c00021000 rwxp 00000000 00:00 0 ",
			procMapping{start: 0x7f1c00000000, end: 0x7f1c00021000}, true},
		{"00400000-00452000 r--p 00000000 08:02 173521      /usr/bin/dbus-daemon",
			procMapping{start: 0x400000, end: 0x452000, devMajor: 8, devMinor: 2, inode: 173521, path: "/usr/bin/dbus-daemon"}, false},
	} {
		got, exec, err := parseMapsLine(tc.line)
		if err != nil || got != tc.want || exec != tc.exec {
			t.Errorf("parseMapsLine(%q) = %+v, %v, %v; want %+v, %v", tc.line, got, exec, err, tc.want, tc.exec)
		}
	}
	for _, bad := range []string{"", "zz-10 r-xp 0 00:00 0", "10-20 r-xp 0 00:00"} {
		if _, _, err := parseMapsLine(bad); err == nil {
			t.Errorf("parseMapsLine(%q): no error", bad)
		}
	}
}

func TestParseNotes(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, 0)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	data := append(note("Go", 4, []byte("abc/def")), note("GNU", 3, []byte{0xde, 0xad, 0xbe, 0xef})...)
	if gnu, goID := parseNotes(data, binary.LittleEndian); gnu != "deadbeef" || goID != "abc/def" {
		t.Errorf("parseNotes = %q, %q", gnu, goID)
	}
	if gnu, goID := parseNotes(data[:20], binary.LittleEndian); gnu != "" || goID != "" {
		t.Errorf("truncated notes: %q, %q", gnu, goID)
	}
}

//go:noinline
func ownStackOuter() []uintptr { return ownStackInner() }

//go:noinline
func ownStackInner() []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(1, pcs)]
}

// TestOwnStack symbolizes a stack of this test binary taken with
// runtime.Callers (return addresses, like a BPF stack's callers) and
// compares with what the runtime says.
func TestOwnStack(t *testing.T) {
	pcs := ownStackOuter()
	user := make([]uint64, len(pcs))
	var want []string
	frames := runtime.CallersFrames(pcs)
	for i, pc := range pcs {
		user[i] = uint64(pc)
		f, _ := frames.Next()
		want = append(want, f.Function)
	}
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	// Index 0 is a return address too here; pretend it is a caller frame by
	// putting a dummy leaf in front.
	p := profileOf(t, s, Sample{PID: os.Getpid(), User: append([]uint64{user[0]}, user...), Values: []int64{1, 1}})
	var got []string
	for _, l := range p.Sample[0].Location[1:] {
		got = append(got, frameOf(l).fn)
	}
	if strings.Join(got[:3], " ") != strings.Join(want[:3], " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for i, name := range []string{"ownStackInner", "ownStackOuter", "TestOwnStack", "testing.tRunner"} {
		if !strings.HasSuffix(got[i], name) {
			t.Errorf("frame %d is %s, want …%s", i, got[i], name)
		}
	}
}

func TestObjectBudget(t *testing.T) {
	out, err := exec.Command("go", "env", "GOTOOLDIR").Output()
	if err != nil {
		t.Skipf("go env GOTOOLDIR: %v", err)
	}
	tools := strings.TrimSpace(string(out))
	load := func(s *Symbolizer, name string) *object {
		t.Helper()
		f, err := os.Open(filepath.Join(tools, name))
		if err != nil {
			t.Skip(err)
		}
		defer f.Close()
		o, err := s.loadFile(f, "")
		if err != nil || o.err != nil {
			t.Fatalf("loading %s: %v %v", name, err, o.err)
		}
		return o
	}
	// compile's .symtab (29k symbols) takes about 4 MiB to read: over a
	// budget of 2 MiB it is skipped, and .gopclntab still names its
	// functions.
	s := New(Options{MaxObjectBytes: 4 << 20})
	defer s.Close()
	if o := load(s, "compile"); o.warn == nil || o.syms.len() < 10000 {
		t.Fatalf("warning %v, %d symbols", o.warn, o.syms.len())
	}
	st := s.Stats()
	if st.ObjectsReduced != 1 || st.Objects != 1 || st.ObjectBytes > 4<<20 {
		t.Errorf("stats %+v", st)
	}
	// With a byte budget just above that object, the next one evicts it.
	s2 := New(Options{MaxObjectBytes: st.ObjectBytes + 1024})
	defer s2.Close()
	load(s2, "compile")
	load(s2, "link")
	if st := s2.Stats(); st.Objects != 1 || st.ObjectEvictions != 1 {
		t.Errorf("after a second object: %+v", st)
	}
}

// BenchmarkAdd adds a stack of this process whose frames the Builder has
// seen: the common case of a profile, where stacks repeat.
func BenchmarkAdd(b *testing.B) {
	pcs := ownStackOuter()
	user := make([]uint64, len(pcs))
	for i, pc := range pcs {
		user[i] = uint64(pc)
	}
	s := New(Options{})
	defer s.Close()
	if err := s.Watch(os.Getpid()); err != nil {
		b.Fatal(err)
	}
	bl := s.NewBuilder(cpuTypes, nil, 0)
	smp := Sample{PID: os.Getpid(), User: user, Values: []int64{1, 1}, Labels: map[string][]string{"comm": {"bench"}}}
	bl.Add(smp)
	b.ReportAllocs()
	for b.Loop() {
		bl.Add(smp)
	}
}

func TestClosed(t *testing.T) {
	s := New(Options{})
	b := s.NewBuilder(cpuTypes, nil, 0)
	s.Close()
	if err := s.Watch(os.Getpid()); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close: %v", err)
	}
	b.Add(Sample{PID: os.Getpid(), User: []uint64{0x401000}, Kernel: []uint64{0xffffffff81000000}, Values: []int64{1, 2}})
	p := b.Profile()
	if err := p.CheckValid(); err != nil || len(p.Sample) != 1 || p.Sample[0].Value[1] != 2 {
		t.Errorf("profile after Close: %v %v", err, p)
	}
}

// TestAliasCap checks that the file identities of one object stay bounded,
// the oldest dropped first.
func TestAliasCap(t *testing.T) {
	c := newObjCache(4, 1<<30)
	o := c.add(&object{key: "b:1"}, "f:0")
	for i := 1; i < 3*maxAliases; i++ {
		c.addAlias(o, fmt.Sprintf("f:%d", i))
	}
	if len(o.aliases) != maxAliases || len(c.aliases) != maxAliases {
		t.Fatalf("%d aliases on the object, %d in the cache; want %d", len(o.aliases), len(c.aliases), maxAliases)
	}
	if c.getAlias("f:0") != nil || c.getAlias(fmt.Sprintf("f:%d", 3*maxAliases-1)) != o {
		t.Error("not the newest identities kept")
	}
}
