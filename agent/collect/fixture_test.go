package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/shirou/gopsutil/v4/cpu"
)

// The fixture trees testdata/t0 and testdata/t1 are copies of this
// machine's files two seconds or so apart, recorded by testdata/record.sh.
// The tests sample t0 at time T and t1 at T+2s, so every rate below is
// (value in t1 - value in t0) / 2, with the values copied from the files.

const fixtureDT = 2.0 // seconds between the two readings in the tests

var fixtureT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a symlink that points at one snapshot or the other, so that
// samplers made once read t0 and then t1 under the same paths.
type fixture struct {
	t    *testing.T
	root string // the tree the link points into: testdata or a copy
	link string
	pid  int
}

func newFixture(t *testing.T, root string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("testdata/pid: %v", err)
	}
	if root == "" {
		root = "testdata"
	}
	root, err = filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, root: root, link: filepath.Join(t.TempDir(), "cur"), pid: pid}
	f.use("t0")
	return f
}

func (f *fixture) use(snap string) {
	f.t.Helper()
	os.Remove(f.link)
	if err := os.Symlink(filepath.Join(f.root, snap), f.link); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) env() Env {
	return Env{ProcFS: filepath.Join(f.link, "proc"), SysFS: filepath.Join(f.link, "sys"), CgroupFS: filepath.Join(f.link, "cgroup")}
}

func (f *fixture) path(rel string) string {
	return filepath.Join(f.link, strings.ReplaceAll(rel, "PID", strconv.Itoa(f.pid)))
}

// run makes every sampler for the fixture's process and samples t0 then t1.
func (f *fixture) run() ([]observation.Series, []observation.Missing) {
	f.t.Helper()
	samplers, missing := Samplers(f.env(), Target{PID: f.pid})
	rec := NewRecorder()
	f.use("t0")
	rec.Sample(context.Background(), samplers, fixtureT0)
	f.use("t1")
	rec.Sample(context.Background(), samplers, fixtureT0.Add(fixtureDT*time.Second))
	return rec.Series(), append(missing, rec.MissingList()...)
}

func findSeries(ss []observation.Series, name observation.SeriesName, labels map[string]string) (observation.Series, bool) {
	for _, s := range ss {
		if s.Name != name || len(s.Labels) != len(labels) {
			continue
		}
		if hasAll(s.Labels, labels) {
			return s, true
		}
	}
	return observation.Series{}, false
}

func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func l(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestFixtureRates(t *testing.T) {
	f := newFixture(t, "")
	series, missing := f.run()
	if len(missing) > 0 {
		t.Errorf("missing on a complete fixture: %+v", missing)
	}
	clk := cpu.ClocksPerSec
	kB := 1024.0
	// Counters have one point (the rate from t0 to t1), gauges two (the
	// value in t0, then the value in t1; only the last is checked).
	type want struct {
		name   observation.SeriesName
		labels map[string]string
		unit   string
		v      float64
	}
	rate := func(t0, t1 float64) float64 { return (t1 - t0) / fixtureDT }
	counters := []want{
		// proc/stat, first three lines.
		{"host.cpu", l("cpu", "all", "mode", "user"), "cores", rate(833426, 833938) / clk},
		{"host.cpu", l("cpu", "all", "mode", "system"), "cores", rate(116238, 116317) / clk},
		{"host.cpu", l("cpu", "all", "mode", "idle"), "cores", rate(843271, 843272) / clk},
		{"host.cpu", l("cpu", "all", "mode", "iowait"), "cores", 0},
		{"host.cpu", l("cpu", "0", "mode", "user"), "cores", rate(416076, 416328) / clk},
		{"host.cpu", l("cpu", "0", "mode", "system"), "cores", rate(55869, 55913) / clk},
		{"host.cpu", l("cpu", "1", "mode", "user"), "cores", rate(417349, 417609) / clk},
		{"host.cpu", l("cpu", "1", "mode", "idle"), "cores", rate(417487, 417488) / clk},
		{"host.cpu", l("cpu", "1", "mode", "steal"), "cores", 0},
		// proc/vmstat
		{"host.memory.pgfault", nil, "count/s", rate(246151152, 246297233)},
		{"host.memory.pgmajfault", nil, "count/s", rate(19307, 19334)},
		{"host.memory.pswpout", nil, "count/s", 0},
		{"host.memory.pgscan", l("reclaimer", "kswapd"), "count/s", 0},
		{"host.memory.pgsteal", l("reclaimer", "direct"), "count/s", 0},
		{"host.memory.oom_kill", nil, "count/s", 0},
		// proc/diskstats, vda: reads, sectors read, ms reading, writes, sectors
		// written, ms writing, in flight, io ms, weighted ms.
		{"host.disk.ops", l("device", "vda", "op", "read"), "ops/s", rate(733403, 733519)},
		{"host.disk.ops", l("device", "vda", "op", "write"), "ops/s", rate(391968, 392448)},
		{"host.disk.bytes", l("device", "vda", "op", "read"), "bytes/s", rate(18019754, 18025122) * 512},
		{"host.disk.bytes", l("device", "vda", "op", "write"), "bytes/s", rate(17277848, 17354128) * 512},
		{"host.disk.utilization", l("device", "vda"), "ratio", rate(63200, 63260) / 1000},
		{"host.disk.queue", l("device", "vda"), "count", rate(442047, 442621) / 1000},
		// proc/net/dev
		{"host.net.bytes", l("interface", "lo", "dir", "in"), "bytes/s", rate(32316506, 36631095)},
		{"host.net.bytes", l("interface", "lo", "dir", "out"), "bytes/s", rate(32316506, 36631095)},
		{"host.net.packets", l("interface", "lo", "dir", "in"), "count/s", rate(8237, 8429)},
		{"host.net.errors", l("interface", "lo", "dir", "in"), "count/s", 0},
		{"host.net.drops", l("interface", "eth0", "dir", "out"), "count/s", 0},
		// proc/net/snmp, Tcp, and proc/net/netstat, TcpExt
		{"host.tcp.active_opens", nil, "count/s", rate(767, 773)},
		{"host.tcp.passive_opens", nil, "count/s", rate(690, 696)},
		{"host.tcp.in_segs", nil, "count/s", rate(17086, 17278)},
		{"host.tcp.out_segs", nil, "count/s", rate(14771, 14964)},
		{"host.tcp.retrans_segs", nil, "count/s", rate(0, 3)},
		{"host.tcp.out_rsts", nil, "count/s", 0},
		{"host.tcp.timeouts", nil, "count/s", rate(3, 3)},
		{"host.tcp.listen_overflows", nil, "count/s", 0},
		// proc/pressure/*, total= in microseconds
		{"host.psi", l("resource", "cpu", "kind", "some"), "seconds/s", rate(1976185757, 1978129519) / 1e6},
		{"host.psi", l("resource", "cpu", "kind", "full"), "seconds/s", 0},
		{"host.psi", l("resource", "io", "kind", "some"), "seconds/s", rate(31194624, 31214444) / 1e6},
		{"host.psi", l("resource", "io", "kind", "full"), "seconds/s", rate(18630604, 18630695) / 1e6},
		{"host.psi", l("resource", "memory", "kind", "some"), "seconds/s", 0},
		// proc/PID/stat: utime (14), stime (15), minflt (10), majflt (12)
		{"process.cpu", l("mode", "user"), "cores", rate(102, 384) / clk},
		{"process.cpu", l("mode", "system"), "cores", rate(1, 5) / clk},
		{"process.memory.minor_faults", nil, "count/s", rate(2907, 3198)},
		{"process.memory.major_faults", nil, "count/s", 0},
		// proc/PID/io
		{"process.io.storage_bytes", l("op", "read"), "bytes/s", rate(40960, 40960)},
		{"process.io.storage_bytes", l("op", "write"), "bytes/s", 0},
		{"process.io.syscall_bytes", l("op", "read"), "bytes/s", rate(4210304, 20987520)},
		{"process.io.syscall_bytes", l("op", "write"), "bytes/s", rate(2097152, 18874368)},
		{"process.io.syscalls", l("op", "read"), "ops/s", rate(524, 2572)},
		{"process.io.syscalls", l("op", "write"), "ops/s", rate(256, 2304)},
		// proc/PID/task/{26831,26833,26839}/status, summed over the threads
		{"process.ctxsw", l("kind", "voluntary"), "count/s", rate(9+1+3, 32+35+17)},
		{"process.ctxsw", l("kind", "involuntary"), "count/s", rate(37+574+652, 133+1999+2041)},
		// proc/PID/task/*/schedstat, nanoseconds, summed over the threads
		{"process.schedstat.on_cpu", nil, "cores", rate(11070895+457541478+623744747, 45469713+1853428220+2159296315) / 1e9},
		{"process.schedstat.run_delay", nil, "seconds/s", rate(293428361+1418714565+1058719399, 513051311+2586889600+2241974946) / 1e9},
		{"process.schedstat.timeslices", nil, "count/s", rate(46+576+655, 165+2035+2059)},
		// cgroup/{cpu,io}.pressure (the process is in the root cgroup)
		{"process.psi", l("resource", "cpu", "kind", "some"), "seconds/s", rate(1976446021, 1978218046) / 1e6},
		{"process.psi", l("resource", "io", "kind", "full"), "seconds/s", rate(18630604, 18630695) / 1e6},
	}
	gauges := []want{
		{"host.cpu.count", nil, "count", 2},
		{"host.load.load1", nil, "count", 1.27},
		{"host.load.load5", nil, "count", 0.85},
		{"host.load.load15", nil, "count", 1.16},
		{"host.load.procs_running", nil, "count", 4},
		{"host.load.procs_blocked", nil, "count", 0},
		{"host.memory.total", nil, "bytes", 24684084 * kB},
		{"host.memory.available", nil, "bytes", 24075496 * kB},
		{"host.memory.free", nil, "bytes", 23363140 * kB},
		{"host.memory.cached", nil, "bytes", 791452 * kB},
		{"host.memory.buffers", nil, "bytes", 23672 * kB},
		{"host.memory.dirty", nil, "bytes", 29696 * kB},
		{"host.memory.writeback", nil, "bytes", 0},
		{"host.memory.swap_total", nil, "bytes", 0},
		{"host.memory.swap_used", nil, "bytes", 0},
		{"host.disk.in_flight", l("device", "vda"), "count", 0},
		// await: ms spent / requests completed over the interval
		{"host.disk.await", l("device", "vda", "op", "read"), "seconds", (253950 - 253927) / 1000.0 / (733519 - 733403)},
		{"host.disk.await", l("device", "vda", "op", "write"), "seconds", (172539 - 172013) / 1000.0 / (392448 - 391968)},
		{"host.tcp.curr_estab", nil, "count", 4},
		{"host.tcp.retrans_ratio", nil, "ratio", (3 - 0) / float64(14964-14771)},
		{"host.psi.avg10", l("resource", "cpu", "kind", "some"), "percent", 37.81},
		{"host.psi.avg10", l("resource", "io", "kind", "full"), "percent", 0.23},
		{"process.cpu.threads", nil, "count", 3},
		{"process.memory.rss", nil, "bytes", 13480 * kB},
		{"process.memory.vms", nil, "bytes", 162204 * kB},
		{"process.memory.swap", nil, "bytes", 0},
		{"process.fds", nil, "count", 7},
		{"process.psi.avg10", l("resource", "cpu", "kind", "some"), "percent", 37.81},
	}
	check := func(w want, points int) {
		t.Helper()
		s, ok := findSeries(series, w.name, w.labels)
		if !ok {
			t.Errorf("no series %s%v", w.name, w.labels)
			return
		}
		if s.Unit != w.unit {
			t.Errorf("%s%v: unit %q, want %q", w.name, w.labels, s.Unit, w.unit)
		}
		if len(s.Points) != points {
			t.Errorf("%s%v: %d points, want %d", w.name, w.labels, len(s.Points), points)
			return
		}
		got := s.Points[len(s.Points)-1].Value
		if math.Abs(got-w.v) > 1e-9*math.Max(1, math.Abs(w.v)) {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	for _, w := range counters {
		check(w, 1)
	}
	for _, w := range gauges {
		// await and the retransmit ratio need two readings: one point.
		if w.name == "host.disk.await" || w.name == "host.tcp.retrans_ratio" {
			check(w, 1)
			continue
		}
		check(w, 2)
	}

	// Devices and interfaces that never did any I/O are left out, and so
	// are partitions (none here) and devices not in sys/block.
	for _, dev := range []string{"loop0", "zram0"} {
		if _, ok := findSeries(series, "host.disk.ops", l("device", dev, "op", "read")); ok {
			t.Errorf("idle device %s has series", dev)
		}
	}
	if _, ok := findSeries(series, "host.net.bytes", l("interface", "ifb0", "dir", "in")); ok {
		t.Errorf("unused interface ifb0 has series")
	}
	// Every series is in the catalogue (analyzer/observation), with the
	// catalogue's unit.
	for _, s := range series {
		if want := s.Name.Unit(); s.Unit != want {
			t.Errorf("%s: unit %q, the catalogue says %q (\"\": not catalogued)", s.Name, s.Unit, want)
		}
		if s.Unit == "percent" && !strings.Contains(string(s.Name), "psi") {
			t.Errorf("%s: percent outside PSI", s.Name)
		}
	}
}

// copyTree copies the fixture snapshots into a new directory, leaving out
// the paths skip says to (relative to the snapshot, e.g. "proc/pressure").
func copyTree(t *testing.T, skip func(rel string) bool) string {
	t.Helper()
	dst := t.TempDir()
	for _, snap := range []string{"t0", "t1"} {
		src := filepath.Join("testdata", snap)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if skip != nil && rel != "." && skip(filepath.ToSlash(rel)) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			out := filepath.Join(dst, snap, rel)
			if d.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func missingReason(missing []observation.Missing, signal observation.Signal) (string, bool) {
	for _, m := range missing {
		if m.Signal == signal {
			return m.Reason, true
		}
	}
	return "", false
}

func TestFixtureWithoutPSI(t *testing.T) {
	root := copyTree(t, func(rel string) bool {
		return rel == "proc/pressure" || strings.HasSuffix(rel, ".pressure")
	})
	f := newFixture(t, root)
	series, missing := f.run()
	for _, sig := range []observation.Signal{observation.SignalHostPSI, observation.SignalProcessPSI} {
		reason, ok := missingReason(missing, sig)
		if !ok {
			t.Errorf("%s not recorded as missing; missing: %+v", sig, missing)
			continue
		}
		if !strings.Contains(reason, "PSI") {
			t.Errorf("%s missing for %q, want a reason naming PSI", sig, reason)
		}
	}
	if len(missing) != 2 {
		t.Errorf("missing: %+v, want only host.psi and process.psi", missing)
	}
	for _, s := range series {
		if strings.Contains(string(s.Name), "psi") {
			t.Errorf("series %s recorded without PSI", s.Name)
		}
	}
	if _, ok := findSeries(series, "host.cpu", l("cpu", "all", "mode", "user")); !ok {
		t.Errorf("the other samplers did not run")
	}
}

func TestFixturePSIGoesAway(t *testing.T) {
	// PSI present when the sampler is made, one resource gone later (or
	// refusing reads): recorded as missing once, not an error each sample.
	root := copyTree(t, nil)
	f := newFixture(t, root)
	s, err := newHostPSI(f.env(), Target{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "t0", "proc", "pressure", "io"))
	rec := NewRecorder()
	for i := 0; i < 3; i++ {
		if err := s.Sample(context.Background(), rec); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	if m := rec.MissingList(); len(m) != 1 || m[0].Signal != "host.psi.io" {
		t.Errorf("missing = %+v, want host.psi.io once", m)
	}
	if _, ok := findSeries(rec.Series(), "host.psi.avg10", l("resource", "cpu", "kind", "some")); !ok {
		t.Errorf("cpu pressure not recorded")
	}
}

// TestFixtureDamaged breaks one file at a time after the samplers are made
// and checks that the sampler reading it returns an error naming it.
func TestFixtureDamaged(t *testing.T) {
	tests := []struct {
		sampler, file, content string
	}{
		{"host.cpu", "proc/stat", "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 x 4 5 6 7 8 9 10\n"},
		{"host.cpu", "proc/stat", "cpu  1 2 3\n"},
		{"host.cpu", "proc/stat", ""},
		{"host.load", "proc/loadavg", "0.45 1.0"},
		{"host.load", "proc/loadavg", "0.45 NaN 1.0 1/2 3"},
		{"host.load", "proc/stat", "cpu  1 2 3 4 5 6 7 8 9 10\nprocs_running 3\n"},
		{"host.memory", "proc/meminfo", "MemTotal: 12x kB\n"},
		{"host.memory", "proc/meminfo", "MemFree: 12 kB\n"},
		{"host.memory", "proc/vmstat", "nr_free_pages 12\npgfault\n"},
		{"host.memory", "proc/vmstat", "pgfault -3\n"},
		{"host.disk", "proc/diskstats", " 254       0 vda 733403 81302 18019754 253927 391968\n"},
		{"host.disk", "proc/diskstats", " 254       0 vda 733403 81302 18019754 253927 391968 155874 17277848 172013 0 63200 44x2047\n"},
		{"host.net", "proc/net/dev", "h1\nh2\n    lo: 1x 2 0 0 0 0 0 0 1 2 0 0 0 0 0 0\n"},
		{"host.net", "proc/net/dev", "Inter-|   Receive\n"},
		{"host.tcp", "proc/net/snmp", "Tcp: RtoAlgorithm RtoMin\n"},
		{"host.tcp", "proc/net/snmp", "Tcp: RtoAlgorithm RtoMin\nTcp: 1\n"},
		{"host.tcp", "proc/net/snmp", "Ip: Forwarding\nIp: 1\n"},
		{"host.tcp", "proc/net/netstat", "TcpExt: A B\nIpExt: 1 2\n"},
		{"host.psi", "proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=x\n"},
		{"host.psi", "proc/pressure/memory", "full avg10=0.00 total=1\n"},
		{"host.psi", "proc/pressure/io", "some avg10=1.0 av"},
		{"process.cpu", "proc/PID/stat", "26831 (xz) S 26828 26784 1730 0 -1 4194304 2907"},
		{"process.cpu", "proc/PID/stat", "26831 xz S 1 2 3"},
		{"process.memory", "proc/PID/status", "Name:\txz\nVmRSS:\t12x kB\n"},
		{"process.io", "proc/PID/io", "rchar: 12\nwchar: x\n"},
		{"process.ctxsw", "proc/PID/task/26833/status", "voluntary_ctxt_switches:\t1\n"},
		{"process.ctxsw", "proc/PID/task/26833/status", "voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t-2\n"},
		{"process.schedstat", "proc/PID/task/26839/schedstat", "1 2\n"},
		{"process.schedstat", "proc/PID/task/26839/schedstat", "1 2 x\n"},
		{"process.psi", "proc/PID/cgroup", "garbage\n"},
		{"process.psi", "proc/PID/cgroup", "1:cpu:/\n"},
		{"process.psi", "cgroup/memory.pressure", "some avg10=1 avg60=2 avg300=3\n"},
	}
	root := copyTree(t, nil)
	f := newFixture(t, root)
	for _, tt := range tests {
		t.Run(tt.sampler+"/"+tt.file, func(t *testing.T) {
			s := makeSampler(t, f, observation.Signal(tt.sampler))
			path := f.path(tt.file)
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(target, orig, 0o644)
			if err := os.WriteFile(target, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err = s.Sample(context.Background(), NewRecorder())
			if err == nil {
				t.Fatalf("no error for %q in %s", tt.content, tt.file)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			t.Log(err)
		})
	}
}

func makeSampler(t *testing.T, f *fixture, name observation.Signal) Sampler {
	t.Helper()
	registryMu.Lock()
	fac := registry[name]
	registryMu.Unlock()
	if fac == nil {
		t.Fatalf("no sampler %s", name)
	}
	s, err := fac(f.env(), Target{PID: f.pid})
	if err != nil || s == nil {
		t.Fatalf("making %s: %v", name, err)
	}
	return s
}

// TestFixtureTruncated cuts every fixture file at many lengths: no sampler
// may panic, and a sampler that fails must name the damaged file (or say
// the process is gone, which a cut start time reads as).
func TestFixtureTruncated(t *testing.T) {
	root := copyTree(t, nil)
	f := newFixture(t, root)
	snap := filepath.Join(root, "t0")
	var files []string
	filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	for _, file := range files {
		orig, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(snap, file)
		step := len(orig)/12 + 1
		for cut := 0; cut < len(orig); cut += step {
			if err := os.WriteFile(file, orig[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			samplers, _ := Samplers(f.env(), Target{PID: f.pid})
			for _, s := range samplers {
				err := sampleNoPanic(s)
				if err != nil && !errors.Is(err, ErrProcessGone) && !strings.Contains(err.Error(), rel) {
					t.Errorf("%s cut at %d: %s: error does not name the file: %v", rel, cut, s.Name(), err)
				}
			}
		}
		if err := os.WriteFile(file, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sampleNoPanic(s Sampler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v", s.Name(), r)
		}
	}()
	return s.Sample(context.Background(), NewRecorder())
}

func TestFixtureProcessGone(t *testing.T) {
	names := []observation.Signal{"process.cpu", "process.memory", "process.io", "process.fds", "process.ctxsw", "process.schedstat", "process.psi", "process.tcp"}
	for _, how := range []struct {
		name string
		kill func(pidDir string) error
	}{
		{"exited", os.RemoveAll},
		{"zombie", func(d string) error { return editStat(d, 3, "Z") }},
		{"pid reused", func(d string) error { return editStat(d, 22, "999999") }},
	} {
		t.Run(how.name, func(t *testing.T) {
			root := copyTree(t, nil)
			f := newFixture(t, root)
			rec := NewRecorder()
			var ss []Sampler
			for _, n := range names {
				ss = append(ss, makeSampler(t, f, n))
			}
			for _, s := range ss {
				if err := s.Sample(context.Background(), rec); err != nil {
					t.Fatalf("%s: %v", s.Name(), err)
				}
			}
			if err := how.kill(filepath.Join(root, "t0", "proc", strconv.Itoa(f.pid))); err != nil {
				t.Fatal(err)
			}
			if how.name == "zombie" {
				// Exited, not yet reaped: read once more, for the final
				// counters its parent could still see; not for what only
				// a live process has.
				gauges := map[observation.SeriesName]int{}
				for _, s := range rec.Series() {
					gauges[s.Name] = len(s.Points)
				}
				for _, s := range ss {
					if err := s.Sample(context.Background(), rec); err != nil {
						t.Errorf("%s: the zombie's reading: %v", s.Name(), err)
					}
				}
				for _, s := range rec.Series() {
					switch s.Name {
					case observation.ProcessRSS, observation.ProcessVMS, observation.ProcessSwap, observation.ProcessFDs,
						observation.ProcessThreads, observation.ProcessTCPConns:
						if len(s.Points) != gauges[s.Name] {
							t.Errorf("%s: a zombie's reading recorded (%d points, %d before)", s.Name, len(s.Points), gauges[s.Name])
						}
					}
				}
			}
			count := func() (series, points int) {
				for _, s := range rec.Series() {
					series, points = series+1, points+len(s.Points)
				}
				return series, points
			}
			beforeSeries, beforePoints := count()
			for _, s := range ss {
				if err := s.Sample(context.Background(), rec); !errors.Is(err, ErrProcessGone) {
					t.Errorf("%s: got %v, want ErrProcessGone", s.Name(), err)
				}
				for i := 0; i < 2; i++ {
					if err := s.Sample(context.Background(), rec); err != nil {
						t.Errorf("%s: after the first ErrProcessGone: %v", s.Name(), err)
					}
				}
			}
			if series, points := count(); series != beforeSeries || points != beforePoints {
				t.Errorf("recorded after the process was gone: %d series, %d points; want %d, %d", series, points, beforeSeries, beforePoints)
			}
			if how.name == "pid reused" {
				return // made now, the samplers follow the new process
			}
			// Made now, the samplers say the process is gone.
			_, missing := Samplers(f.env(), Target{PID: f.pid})
			gone := 0
			for _, m := range missing {
				if strings.HasPrefix(string(m.Signal), "process.") && strings.Contains(m.Reason, ErrProcessGone.Error()) {
					gone++
				}
			}
			if gone != len(names) {
				t.Errorf("Samplers for a gone process: missing %+v", missing)
			}
		})
	}
}

// editStat sets field n (proc(5) numbering from 1) of PID/stat.
func editStat(pidDir string, n int, v string) error {
	path := filepath.Join(pidDir, "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	f[n-3] = v
	return os.WriteFile(path, []byte(s[:i+1]+" "+strings.Join(f, " ")+"\n"), 0o644)
}

func TestProcessSamplersNeedAPID(t *testing.T) {
	f := newFixture(t, "")
	samplers, missing := Samplers(f.env(), Target{})
	for _, s := range samplers {
		if strings.HasPrefix(string(s.Name()), "process.") {
			t.Errorf("%s made for PID 0", s.Name())
		}
	}
	for _, m := range missing {
		if strings.HasPrefix(string(m.Signal), "process.") {
			t.Errorf("%s missing for PID 0: %s", m.Signal, m.Reason)
		}
	}
	if len(samplers) != 7 {
		t.Errorf("%d host samplers, want 7", len(samplers))
	}
}
