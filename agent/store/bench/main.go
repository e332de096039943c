// Command bench measures the agent's store against the simple
// alternative, one observation.Save directory per window, on a realistic
// window: a real host window of this VM (agent/store/testdata/host-window)
// split by procrank into its busiest processes, each a service's record,
// plus the host's record. Both are measured side by side in one run,
// alternating window by window, so that a noisy machine weighs on both.
//
//	go run ./agent/store/bench [-procs 100] [-windows 360] [-dir DIR]
//
// It prints, per backend: the write cost of a window (wall and CPU time
// of this process, medians), the bytes on disk per window and so per day
// of 10 s windows (8,640 a day, before rollups), and the time of "one
// service, one hour (360 windows), merged into one pprof" (median of 5).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/procrank"
)

func main() {
	host := flag.String("host", "agent/store/testdata/host-window", "the host window to split")
	procs := flag.Int("procs", 100, "processes (services) per window")
	windows := flag.Int("windows", 360, "windows to write (the query reads one hour: 360)")
	dir := flag.String("dir", "", "where to write (default: a temporary directory, removed after)")
	flag.Parse()

	o, err := observation.Load(*host)
	if err != nil {
		log.Fatal(err)
	}
	h := procrank.NewHost(o)
	var recs []store.Record
	for _, p := range h.Rank() {
		if len(recs) == *procs {
			break
		}
		recs = append(recs, store.Record{Service: fmt.Sprintf("svc%03d-%s", len(recs), p.Comm), Version: "v1",
			Obs: h.Split(p.PID), Verdict: []byte(`{"class":"cpu","confidence":0.9,"load":{"cpu":0.5,"none":0.2}}`)})
	}
	if len(recs) < *procs {
		log.Fatalf("%s ranks %d processes, fewer than -procs %d", *host, len(recs), *procs)
	}
	root := *dir
	if root == "" {
		if root, err = os.MkdirTemp("/var/tmp", "perfhound-store-bench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(root)
	}
	boltDir, dirsDir := filepath.Join(root, "bbolt"), filepath.Join(root, "dirs")
	s, err := store.Open(boltDir, store.Options{Rollups: []store.Rollup{}, MaxBytes: 1 << 40, MaxAge: 1 << 62})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var boltWall, boltCPU, dirsWall, dirsCPU []time.Duration
	for i := range *windows {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		b := batch(o, recs, at)
		w, c := measure(func() error { return s.Put(b) })
		boltWall, boltCPU = append(boltWall, w), append(boltCPU, c)
		w, c = measure(func() error { return saveDirs(dirsDir, b) })
		dirsWall, dirsCPU = append(dirsWall, w), append(dirsCPU, c)
	}
	boltBytes, dirsBytes := du(boltDir), du(dirsDir)

	q := store.Query{Service: recs[0].Service, From: start, To: start.Add(time.Hour), Kinds: []observation.ProfileKind{observation.KindCPU}}
	var boltQ, dirsQ []time.Duration
	var boltSize, dirsSize int
	for range 5 {
		w, _ := measure(func() error {
			m, err := s.Merged(q)
			if err == nil {
				boltSize, err = writeCPU(m)
			}
			return err
		})
		boltQ = append(boltQ, w)
		w, _ = measure(func() error {
			m, err := loadDirs(dirsDir, recs[0].Service, *windows)
			if err == nil {
				dirsSize, err = writeCPU(m)
			}
			return err
		})
		dirsQ = append(dirsQ, w)
	}
	perDay := func(total int64) float64 { return float64(total) / float64(*windows) * 8640 / (1 << 30) }
	fmt.Printf("window: 1 host + %d process records from %s (%d windows written, alternating backends)\n", *procs, *host, *windows)
	fmt.Printf("%-8s %12s %12s %14s %14s %16s %12s\n", "backend", "write wall", "write CPU", "bytes/window", "GiB/day (10s)", "1 svc 1 h merged", "pprof bytes")
	fmt.Printf("%-8s %12s %12s %14d %14.2f %16s %12d\n", "bbolt", median(boltWall), median(boltCPU), boltBytes/int64(*windows), perDay(boltBytes), median(boltQ), boltSize)
	fmt.Printf("%-8s %12s %12s %14d %14.2f %16s %12d\n", "dirs", median(dirsWall), median(dirsCPU), dirsBytes/int64(*windows), perDay(dirsBytes), median(dirsQ), dirsSize)
}

// batch is one window of every record, at start.
func batch(host *observation.Observation, recs []store.Record, start time.Time) store.Batch {
	at := func(o *observation.Observation) *observation.Observation {
		c := *o
		c.Meta.Start = start
		return &c
	}
	b := store.Batch{Host: &store.Record{Obs: at(host)}}
	for _, r := range recs {
		r.Obs = at(r.Obs)
		b.Records = append(b.Records, r)
	}
	return b
}

// saveDirs is the alternative: DIR/<window>/<service>/ saved by
// observation.Save for every record, the host's as DIR/<window>/host.
// Its profiles are compacted as the store's are.
func saveDirs(root string, b store.Batch) error {
	win := filepath.Join(root, b.Host.Obs.Meta.Start.UTC().Format("20060102T150405"))
	save := func(name string, o *observation.Observation) error {
		c := *o
		c.Profiles = slices.Clone(o.Profiles)
		for i := range c.Profiles {
			c.Profiles[i].Profile = c.Profiles[i].Profile.Compact()
		}
		return observation.Save(&c, filepath.Join(win, name))
	}
	if err := save("host", b.Host.Obs); err != nil {
		return err
	}
	for _, r := range b.Records {
		if err := save(r.Service, r.Obs); err != nil {
			return err
		}
	}
	return nil
}

// loadDirs loads one service's record of every window and merges them.
func loadDirs(root, service string, windows int) (*observation.Observation, error) {
	wins, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var obs []*observation.Observation
	for _, w := range wins {
		o, err := observation.Load(filepath.Join(root, w.Name(), service))
		if err != nil {
			return nil, err
		}
		obs = append(obs, o)
	}
	if len(obs) != windows {
		return nil, fmt.Errorf("%d windows of %s, want %d", len(obs), service, windows)
	}
	return observation.Merge(obs)
}

// writeCPU writes the merged CPU profile as the API serves it (gzipped
// pprof) and returns its size.
func writeCPU(o *observation.Observation) (int, error) {
	ps := o.ProfilesOf(observation.KindCPU)
	if len(ps) == 0 {
		return 0, fmt.Errorf("no cpu profile")
	}
	var buf bytes.Buffer
	err := ps[0].Profile.Write(&buf)
	return buf.Len(), err
}

// measure runs f and returns its wall time and this process's CPU time
// (user and system, all threads) meanwhile.
func measure(f func() error) (wall, cpu time.Duration) {
	c0 := cpuTime()
	t0 := time.Now()
	if err := f(); err != nil {
		log.Fatal(err)
	}
	return time.Since(t0), cpuTime() - c0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

// du is the disk space of the files under dir (allocated blocks).
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
