// Command storesize prints what an agent's store holds, series by series
// (service and version; the host's series is "(host)"): its records and
// the bytes of their keys and values, largest first, then the totals and
// the file's pages. It opens the file read-only, so run it after the
// agent has stopped (the agent holds the file's lock). cost.sh uses it:
//
//	go run ./agent/daemon/bench/storesize [-top 15] DATA-DIR
//
// With -export SERVICE it instead writes the service's last -n records,
// as the agent stored them, one observation.Marshal blob a file
// (window-00.obs, ...) in -out: real windows for the query benchmark
// (agent/api's BenchmarkProfileHour).
//
// With -age D it first runs the store's maintenance as if D had passed
// (rollups and retention at their defaults), then prints: on a copy of a
// store, it shows what the rollups make of the raw windows.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/perfhound/perfhound/agent/store"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// maintain runs the store's maintenance with its clock moved on by age.
func maintain(dir string, age time.Duration) error {
	st, err := store.Open(dir, store.Options{Now: func() time.Time { return time.Now().Add(age) }})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Maintain(context.Background())
}

// exportRecords writes the last n records of service in dir's store to
// out, oldest first.
func exportRecords(dir, service string, n int, out string) error {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.Range(store.Query{Service: service, From: time.Unix(0, 0), To: time.Now().Add(time.Hour)})
	if err != nil {
		return err
	}
	if len(rs) > n {
		rs = rs[len(rs)-n:]
	}
	for i, r := range rs {
		b, err := observation.Marshal(r.Obs)
		if err != nil {
			return err
		}
		name := filepath.Join(out, fmt.Sprintf("window-%02d.obs", i))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %s %s from %s, %s, %d bytes\n", name, r.Service, r.Version, r.Start.Format(time.RFC3339), r.Duration, len(b))
	}
	return nil
}

type series struct {
	name           string
	records, bytes int64
}

func main() {
	top := flag.Int("top", 15, "series to list (the rest are summed)")
	export := flag.String("export", "", "write this service's last records to -out instead")
	n := flag.Int("n", 12, "records -export writes")
	out := flag.String("out", ".", "directory -export writes to")
	age := flag.Duration("age", 0, "run the store's maintenance as if this much time had passed, first (changes the store)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: storesize [-top N] DATA-DIR | storesize -export SERVICE [-n N] [-out DIR] DATA-DIR")
		os.Exit(2)
	}
	var err error
	if *age > 0 {
		err = maintain(flag.Arg(0), *age)
	}
	if err != nil {
	} else if *export != "" {
		err = exportRecords(flag.Arg(0), *export, *n, *out)
	} else {
		err = run(flag.Arg(0), *top)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storesize:", err)
		os.Exit(1)
	}
}

func run(dir string, top int) error {
	path := filepath.Join(dir, store.FileName)
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	bySeries := map[string]*series{}
	var fileBytes, branchAlloc, leafAlloc int64
	err = db.View(func(tx *bolt.Tx) error {
		fileBytes = tx.Size()
		w := tx.Bucket([]byte("w"))
		if w == nil {
			return fmt.Errorf("%s holds no windows bucket", path)
		}
		st := w.Stats()
		branchAlloc, leafAlloc = int64(st.BranchAlloc), int64(st.LeafAlloc)
		return w.ForEachBucket(func(hour []byte) error {
			hb := w.Bucket(hour)
			return hb.ForEachBucket(func(name []byte) error {
				n := strings.ReplaceAll(string(name), "\x00", " ")
				if n == " " {
					n = "(host)"
				}
				s := bySeries[n]
				if s == nil {
					s = &series{name: n}
					bySeries[n] = s
				}
				return hb.Bucket(name).ForEach(func(k, v []byte) error {
					s.records++
					s.bytes += int64(len(k) + len(v))
					return nil
				})
			})
		})
	})
	if err != nil {
		return err
	}
	all := make([]*series, 0, len(bySeries))
	var total series
	for _, s := range bySeries {
		all = append(all, s)
		total.records += s.records
		total.bytes += s.bytes
	}
	slices.SortFunc(all, func(a, b *series) int { return cmp.Or(cmp.Compare(b.bytes, a.bytes), cmp.Compare(a.name, b.name)) })
	fmt.Printf("| series (service version) | records | bytes | per record | share |\n|---|---|---|---|---|\n")
	var rest series
	for i, s := range all {
		if i >= top {
			rest.records += s.records
			rest.bytes += s.bytes
			continue
		}
		fmt.Printf("| %s | %d | %d | %d | %.1f%% |\n", s.name, s.records, s.bytes, s.bytes/max(s.records, 1), 100*float64(s.bytes)/float64(max(total.bytes, 1)))
	}
	if rest.records > 0 {
		fmt.Printf("| %d other series | %d | %d | %d | %.1f%% |\n", len(all)-top, rest.records, rest.bytes, rest.bytes/rest.records, 100*float64(rest.bytes)/float64(max(total.bytes, 1)))
	}
	fmt.Printf("| all %d series | %d | %d | %d | 100%% |\n", len(all), total.records, total.bytes, total.bytes/max(total.records, 1))
	fmt.Printf("\nkeys and values %d B; the windows' pages %d B (branch %d, leaf %d); file %d B\n", total.bytes, branchAlloc+leafAlloc, branchAlloc, leafAlloc, fileBytes)
	return nil
}
