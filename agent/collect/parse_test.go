package collect

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		in   string
		want [3]float64
		err  string
	}{
		{"0.43 0.87 1.25 5/88 18793\n", [3]float64{0.43, 0.87, 1.25}, ""},
		{"12.00 8.50 4.25\n", [3]float64{12, 8.5, 4.25}, ""},
		{"0.43 0.87\n", [3]float64{}, "want 3 load averages"},
		{"", [3]float64{}, "want 3 load averages"},
		{"0.43 x 1.25 1/2 3", [3]float64{}, "load average 2"},
		{"0.43 -1 1.25 1/2 3", [3]float64{}, "load average 2"},
		{"Inf 1 1.25 1/2 3", [3]float64{}, "load average 1"},
	}
	for _, tt := range tests {
		got, err := parseLoadavg("loadavg", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseLoadavg(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseLoadavg(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

func TestParseStatProcs(t *testing.T) {
	tests := []struct {
		in               string
		running, blocked uint64
		err              string
	}{
		{"cpu  1 2 3\nctxt 5\nprocs_running 4\nprocs_blocked 2\nsoftirq 1 2\n", 4, 2, ""},
		{"procs_blocked 0\nprocs_running 1", 1, 0, ""},
		{"procs_running 4\n", 0, 0, "no procs_running and procs_blocked"},
		{"procs_running x\nprocs_blocked 0\n", 0, 0, "line 1: procs_running"},
		{"", 0, 0, "no procs_running"},
	}
	for _, tt := range tests {
		r, b, err := parseStatProcs("stat", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseStatProcs(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && (r != tt.running || b != tt.blocked) {
			t.Errorf("parseStatProcs(%q) = %d, %d, want %d, %d", tt.in, r, b, tt.running, tt.blocked)
		}
	}
}

func TestParseFlatKeyed(t *testing.T) {
	want := map[string]bool{"pgfault": true, "oom_kill": true}
	tests := []struct {
		in   string
		want map[string]uint64
		err  string
	}{
		{"nr_free_pages 5\npgfault 10\noom_kill 0\n", map[string]uint64{"pgfault": 10, "oom_kill": 0}, ""},
		{"pgfault 10\n\n", map[string]uint64{"pgfault": 10}, ""},
		{"nr_dirty -1\npgfault 10\n", map[string]uint64{"pgfault": 10}, ""}, // unwanted values are not checked
		{"pgfault 10 11\n", nil, "line 1: want \"name value\""},
		{"pgfault\n", nil, "line 1"},
		{"pgfault 1e3\n", nil, "line 1: pgfault"},
	}
	for _, tt := range tests {
		got, err := parseFlatKeyed("vmstat", []byte(tt.in), want)
		if !errMatches(err, tt.err) {
			t.Errorf("parseFlatKeyed(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFlatKeyed(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseSNMPTables(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]map[string]int64
		err  string
	}{
		{
			"Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: MaxConn CurrEstab\nTcp: -1 4\n",
			map[string]map[string]int64{"Ip": {"Forwarding": 2, "DefaultTTL": 64}, "Tcp": {"MaxConn": -1, "CurrEstab": 4}},
			"",
		},
		{"Tcp: A B\n", nil, "line 1: header of \"Tcp\" has no line of values"},
		{"Tcp: A B\nTcp: 1\n", nil, "line 2: Tcp: 1 values for 2 names"},
		{"Tcp: A B\nUdp: 1 2\n", nil, "line 2: values for \"Udp\" follow the header of \"Tcp\""},
		{"Tcp: A\nTcp: x\n", nil, "line 2: Tcp A"},
		{"no colon here\n", nil, "line 1: no \"Table:\" prefix"},
		{"", map[string]map[string]int64{}, ""},
	}
	for _, tt := range tests {
		got, err := parseSNMPTables("snmp", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseSNMPTables(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSNMPTables(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDiskstats(t *testing.T) {
	tests := []struct {
		in   string
		want []diskStat
		err  string
	}{
		{
			// Kernels before 4.18: 11 counters.
			"   8       0 sda 10 1 80 7 20 2 160 9 1 15 16\n",
			[]diskStat{{name: "sda", reads: 10, readSectors: 80, readMs: 7, writes: 20, writeSectors: 160, writeMs: 9, inFlight: 1, ioMs: 15, weightedMs: 16}},
			"",
		},
		{
			// Since 5.5: discard and flush counters follow, and are ignored.
			" 254 0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n 254 1 vda1 1 0 8 1 0 0 0 0 0 1 1 0 0 0 0 0 0\n",
			[]diskStat{
				{name: "vda", reads: 1, readSectors: 3, readMs: 4, writes: 5, writeSectors: 7, writeMs: 8, inFlight: 9, ioMs: 10, weightedMs: 11},
				{name: "vda1", reads: 1, readSectors: 8, readMs: 1, ioMs: 1, weightedMs: 1},
			},
			"",
		},
		{" 8 0 sda 1 2 3\n", nil, "line 1: want at least 14 fields, got 6"},
		{" 8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n", nil, "line 1: sda field 14"},
		{"", nil, ""},
	}
	for _, tt := range tests {
		got, err := parseDiskstats("diskstats", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseDiskstats(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseDiskstats(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParsePSI(t *testing.T) {
	tests := []struct {
		in   string
		want []psiStall
		err  string
	}{
		{
			"some avg10=1.12 avg60=3.98 avg300=9.10 total=1959326774\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
			[]psiStall{{"some", 1.12, 3.98, 9.10, 1959326774}, {"full", 0, 0, 0, 0}},
			"",
		},
		// Kernels before 5.13 have no "full" line for CPU.
		{"some avg10=0.50 avg60=0.10 avg300=0.02 total=42\n", []psiStall{{"some", 0.5, 0.1, 0.02, 42}}, ""},
		{"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", nil, "no \"some\" line"},
		{"", nil, "no \"some\" line"},
		{"some avg10=0.00 avg60=0.00 avg300=0.00\n", nil, "line 1: no avg10 or total"},
		{"some avg10=NaN avg60=0 avg300=0 total=1\n", nil, "line 1: avg10: bad value"},
		{"some avg10=0 total=-1\n", nil, "line 1: total"},
		{"partial avg10=0 total=1\n", nil, "line 1: want \"some\" or \"full\""},
	}
	for _, tt := range tests {
		got, err := parsePSI("cpu", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parsePSI(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parsePSI(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	const tail = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	tests := []struct {
		in   string
		want procStat
		err  string
	}{
		{
			"18779 (xz) S 18776 18771 1730 0 -1 4194304 2939 0 2 0 223 5 0 0 20 0 3 0 886956 165044224 3086" + tail,
			procStat{state: 'S', minflt: 2939, majflt: 2, utime: 223, stime: 5, threads: 3, starttime: 886956, rss: 3086},
			"",
		},
		{
			// A command name with spaces and parentheses.
			"42 (a (b) c) R 1 42 42 0 -1 0 7 0 1 0 100 200 0 0 20 0 12 0 555 1 2" + tail,
			procStat{state: 'R', minflt: 7, majflt: 1, utime: 100, stime: 200, threads: 12, starttime: 555, rss: 2},
			"",
		},
		{"42 (x) R 1 2 3", procStat{}, "want at least 22 fields"},
		{"42 x R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", procStat{}, "no (comm) field"},
		{"42 (x) R 1 42 42 0 -1 0 x 0 1 0 100 200 0 0 20 0 12 0 555 1 2", procStat{}, "field 10"},
		{"", procStat{}, "no (comm) field"},
	}
	for _, tt := range tests {
		got, err := parseProcStat("stat", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseProcStat(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseProcStat(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\txz\nVmSize:\t  161176 kB\nVmRSS:\t   12396 kB\nThreads:\t3\nvoluntary_ctxt_switches:\t31\n"
	got, err := parseStatus("status", []byte(in), "VmRSS", "VmSize", "VmSwap", "voluntary_ctxt_switches")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"VmRSS": 12396 << 10, "VmSize": 161176 << 10, "voluntary_ctxt_switches": 31}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseStatus = %v, want %v", got, want)
	}
	for _, bad := range []string{"VmRSS:\n", "VmRSS:\tmany kB\n"} {
		if _, err := parseStatus("status", []byte(bad), "VmRSS"); !errMatches(err, "line 1: VmRSS") {
			t.Errorf("parseStatus(%q): error %v", bad, err)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in   string
		want [3]uint64
		err  string
	}{
		{"44850553 43084562 50\n", [3]uint64{44850553, 43084562, 50}, ""},
		{"0 0 0\n", [3]uint64{}, ""},
		{"1 2\n", [3]uint64{}, "want 3 fields, got 2"},
		{"1 2 3 4\n", [3]uint64{}, "want 3 fields, got 4"},
		{"1 -2 3\n", [3]uint64{}, "field 2"},
	}
	for _, tt := range tests {
		got, err := parseSchedstat("schedstat", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseSchedstat(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseSchedstat(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseCgroupV2Path(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"0::/system.slice/perfhound.service\n", "/system.slice/perfhound.service", ""},
		// Hybrid: v1 hierarchies and the unified one.
		{"9:name=systemd:/\n4:memory:/a/b\n1:cpu:/\n0::/\n", "/", ""},
		{"0::/gone (deleted)\n", "/gone", ""},
		{"0::/a:b\n", "/a:b", ""},
		{"4:memory:/a\n1:cpu:/\n", "", "no cgroup v2 line"},
		{"", "", "no cgroup v2 line"},
		{"nonsense\n", "", "line 1: want \"id:controllers:path\""},
	}
	for _, tt := range tests {
		got, err := parseCgroupV2Path("cgroup", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseCgroupV2Path(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseCgroupV2Path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMountinfoCgroup2(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	tests := []struct {
		in, want string
		ok       bool
		err      string
	}{
		{hybrid, "/sys/fs/cgroup/unified", true, ""},
		{"29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", true, ""},
		{"29 23 0:26 / /mnt/my\\040cgroups rw - cgroup2 none rw\n", "/mnt/my cgroups", true, ""},
		{"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n", "", false, ""},
		{"32 31 0:29 /\n", "", false, "line 1: not a mountinfo line"},
	}
	for _, tt := range tests {
		got, ok, err := parseMountinfoCgroup2("mountinfo", []byte(tt.in))
		if !errMatches(err, tt.err) {
			t.Errorf("parseMountinfoCgroup2(%q): error %v, want %q", tt.in, err, tt.err)
			continue
		}
		if err == nil && (got != tt.want || ok != tt.ok) {
			t.Errorf("parseMountinfoCgroup2(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	for in, want := range map[string]string{`a\040b`: "a b", `a\\b`: `a\\b`, `a\134b`: `a\b`, `end\04`: `end\04`, `plain`: "plain"} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCgroup2Root(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := Env{ProcFS: filepath.Join(dir, "proc"), SysFS: filepath.Join(dir, "sys")}
	// No mountinfo, no cgroup v2 root under SysFS.
	if _, err := cgroup2Root(env); !errMatches(err, "no cgroup v2 hierarchy") {
		t.Errorf("empty tree: %v", err)
	}
	// The fallback: SysFS/fs/cgroup holding cgroup.controllers.
	write("sys/fs/cgroup/cgroup.controllers", "cpu io memory\n")
	if got, err := cgroup2Root(env); err != nil || got != filepath.Join(dir, "sys/fs/cgroup") {
		t.Errorf("fallback: %q, %v", got, err)
	}
	// mountinfo wins over the fallback.
	write("proc/self/mountinfo", "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
	if got, err := cgroup2Root(env); err != nil || got != "/sys/fs/cgroup/unified" {
		t.Errorf("mountinfo: %q, %v", got, err)
	}
	// Env.CgroupFS wins over everything.
	env.CgroupFS = "/elsewhere"
	if got, err := cgroup2Root(env); err != nil || got != "/elsewhere" {
		t.Errorf("CgroupFS: %q, %v", got, err)
	}
}

func TestThreadSum(t *testing.T) {
	s := newThreadSum(1)
	steps := []struct {
		threads map[string][]uint64
		want    uint64
	}{
		{map[string][]uint64{"1": {10}, "2": {5}}, 15},
		{map[string][]uint64{"1": {12}, "2": {9}}, 21}, // +2 +4
		{map[string][]uint64{"1": {13}}, 22},           // 2 exited: its past stays counted
		{map[string][]uint64{"1": {13}, "3": {7}}, 29}, // 3 is new: all of it counts
		{map[string][]uint64{"1": {14}, "3": {2}}, 32}, // 3 reused: counting from zero again
	}
	for i, st := range steps {
		if got := s.add(st.threads)[0]; got != st.want {
			t.Errorf("step %d: total %d, want %d", i, got, st.want)
		}
	}
}

// TestDiskSelection checks which devices host.disk reports: whole disks
// (the entries of sys/block, "!" standing for "/") that have done I/O.
func TestDiskSelection(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"sda", "loop0", "ram0", "dm-0", "cciss!c0d0"} {
		if err := os.MkdirAll(filepath.Join(dir, "sys", "block", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "proc"), 0o755)
	stats := ` 8 0 sda 100 0 800 50 10 0 80 5 0 40 55
 8 1 sda1 90 0 720 45 10 0 80 5 0 38 50
 7 0 loop0 4 0 32 1 0 0 0 0 0 1 1
 1 0 ram0 0 0 0 0 0 0 0 0 0 0 0
 253 0 dm-0 50 0 400 20 5 0 40 2 0 20 22
 104 0 cciss/c0d0 1 0 8 1 0 0 0 0 0 1 1
 9 0 md0 1 0 8 1 0 0 0 0 0 1 1
`
	if err := os.WriteFile(filepath.Join(dir, "proc", "diskstats"), []byte(stats), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := newHostDisk(Env{ProcFS: filepath.Join(dir, "proc"), SysFS: filepath.Join(dir, "sys")}, Target{})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	if err := s.Sample(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, x := range rec.Series() {
		got[x.Labels["device"]] = true
	}
	want := map[string]bool{"sda": true, "loop0": true, "dm-0": true, "cciss/c0d0": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("devices %v, want %v (no partition, no idle ram0, no md0 missing from sys/block)", got, want)
	}
}
