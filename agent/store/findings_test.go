package store

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/regress"
)

// finding is a version finding of svc's function fn, detected at.
func finding(id, svc, fn string, at time.Time) regress.Finding {
	return regress.Finding{
		ID: id, Service: svc, Kind: regress.KindVersion, Function: fn, BaseVersion: "v1", HeadVersion: "v2",
		DetectedAt: at, ChangePct: 11, CILow: 6, CIHigh: 16, Confidence: 0.95, PValue: 3e-6,
		Cum:      regress.Change{Base: 0.05, Head: 0.056},
		Evidence: []string{fn + "'s share of the service's CPU rose from 5.0% to 5.6%"},
	}
}

func ids(fs []regress.Finding) string {
	var s []string
	for _, f := range fs {
		state := "raised"
		if f.Resolved {
			state = "resolved"
		}
		s = append(s, f.ID+":"+state)
	}
	return strings.Join(s, ",")
}

// TestFindingsUpsert: a finding is stored once per ID; found again (a
// replay after a restart) it keeps its earliest detection; resolved, it
// is reported changed once and stays resolved; and it is all there after
// the store is opened again.
func TestFindingsUpsert(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	a := finding("a", "shop", "main.parse", t0.Add(10*time.Minute))
	b := finding("b", "shop", "main.hash", t0.Add(20*time.Minute))

	changed, err := s.PutFindings([]regress.Finding{a, b})
	if err != nil || ids(changed) != "a:raised,b:raised" {
		t.Fatalf("first put: changed %s, %v; want both raised", ids(changed), err)
	}
	// The same finding, found again later (a replay that started after the
	// first detection): nothing changed, its first detection kept.
	again := a
	again.DetectedAt = t0.Add(15 * time.Minute)
	if changed, err = s.PutFindings([]regress.Finding{again}); err != nil || len(changed) != 0 {
		t.Fatalf("found again: changed %s, %v; want nothing", ids(changed), err)
	}
	// Found earlier than stored: the earlier time is kept.
	earlier := a
	earlier.DetectedAt = t0.Add(5 * time.Minute)
	if changed, err = s.PutFindings([]regress.Finding{earlier}); err != nil || len(changed) != 0 {
		t.Fatalf("found earlier: changed %s, %v; want nothing new", ids(changed), err)
	}
	// Resolved by v3: changed once, as resolved, with its first detection.
	res := a
	res.Resolved, res.ResolvedAt, res.ResolvedBy = true, t0.Add(time.Hour), "v3"
	changed, err = s.PutFindings([]regress.Finding{res})
	if err != nil || ids(changed) != "a:resolved" || !changed[0].DetectedAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("resolved: changed %s %v, %v; want a resolved, detected at +5m", ids(changed), changed, err)
	}
	if changed, err = s.PutFindings([]regress.Finding{res}); err != nil || len(changed) != 0 {
		t.Fatalf("resolved twice: changed %s, %v", ids(changed), err)
	}
	// Raised again under its ID (a replay that saw only its beginning):
	// it stays resolved.
	if changed, err = s.PutFindings([]regress.Finding{a}); err != nil || len(changed) != 0 {
		t.Fatalf("raised after resolved: changed %s, %v; want nothing", ids(changed), err)
	}
	// Raised and resolved in one put: both events, in order.
	c := finding("c", "cart", "main.total", t0.Add(30*time.Minute))
	cres := c
	cres.Resolved, cres.ResolvedAt, cres.ResolvedBy = true, t0.Add(40*time.Minute), "v4"
	if changed, err = s.PutFindings([]regress.Finding{c, cres}); err != nil || ids(changed) != "c:raised,c:resolved" {
		t.Fatalf("raised and resolved at once: changed %s, %v", ids(changed), err)
	}
	if _, err := s.PutFindings([]regress.Finding{{Service: "shop"}}); !errors.Is(err, ErrBadRecord) {
		t.Errorf("a finding without an ID: %v, want ErrBadRecord", err)
	}

	s.Close()
	s = open(t, dir, Options{})
	got, err := s.Findings()
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != "a:resolved,b:raised,c:resolved" {
		t.Fatalf("after reopening: %s", ids(got))
	}
	if f := got[0]; !f.DetectedAt.Equal(t0.Add(5*time.Minute)) || f.ResolvedBy != "v3" || f.Function != "main.parse" || f.PValue != 3e-6 || len(f.Evidence) != 1 {
		t.Errorf("a read back: %+v", f)
	}
}

// TestFindingsBounded: past MaxFindings the oldest resolved findings go
// first, then the oldest active ones.
func TestFindingsBounded(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	var fs []regress.Finding
	// 300 resolved, then 900 active: 200 too many, all resolved.
	for i := range 1200 {
		f := finding(fmt.Sprintf("f%04d", i), "shop", fmt.Sprintf("main.f%d", i), t0.Add(time.Duration(i)*time.Second))
		if i < 300 {
			f.Resolved, f.ResolvedAt = true, t0.Add(time.Hour+time.Duration(i)*time.Second)
		}
		fs = append(fs, f)
	}
	if _, err := s.PutFindings(fs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Findings()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxFindings || got[0].ID != "f0200" || !got[0].Resolved || got[100].Resolved {
		t.Fatalf("%d findings from %s, want %d from f0200 (the oldest resolved dropped)", len(got), got[0].ID, MaxFindings)
	}
	// 200 more active ones: the remaining 100 resolved go, then the 100
	// oldest active.
	fs = fs[:0]
	for i := 1200; i < 1400; i++ {
		fs = append(fs, finding(fmt.Sprintf("f%04d", i), "shop", "main.g", t0.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.PutFindings(fs); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Findings(); err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if f.Resolved {
			t.Fatalf("resolved %s kept while active findings were dropped", f.ID)
		}
	}
	if len(got) != MaxFindings || got[0].ID != "f0400" || got[len(got)-1].ID != "f1399" {
		t.Fatalf("%d findings from %s to %s, want %d from f0400 to f1399", len(got), got[0].ID, got[len(got)-1].ID, MaxFindings)
	}
}

const findingsChildEnv = "PERFHOUND_STORE_FINDINGS_CHILD"

// findingsChild puts batches of 20 findings, saying "committed N" once
// batch N's PutFindings returned, until it is killed. Every batch also
// resolves the previous one's first finding.
func findingsChild(dir string) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	for n := 0; ; n++ {
		fs := make([]regress.Finding, 0, 21)
		for i := range 20 {
			fs = append(fs, finding(fmt.Sprintf("b%05d-%02d", n, i), "shop", "main.f", t0.Add(time.Duration(n)*time.Second)))
		}
		if n > 0 {
			prev := finding(fmt.Sprintf("b%05d-00", n-1), "shop", "main.f", t0.Add(time.Duration(n-1)*time.Second))
			prev.Resolved, prev.ResolvedAt = true, t0.Add(time.Duration(n)*time.Second)
			fs = append(fs, prev)
		}
		if _, err := s.PutFindings(fs); err != nil {
			return err
		}
		fmt.Printf("committed %d\n", n)
	}
}

// TestFindingsKill9 kills a process putting findings with SIGKILL at a
// random point: the store opens again, sound, with every batch whose put
// returned, and no batch in part.
func TestFindingsKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), findingsChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 3 + rand.IntN(20)
		last := -1
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
			if err != nil {
				t.Fatalf("round %d: the writer said %q", round, sc.Text())
			}
			last = n
			if n+1 == killAfter {
				time.Sleep(time.Duration(rand.IntN(5_000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed ")); err == nil {
				last = n
			}
		}
		cmd.Wait()
		if last < 0 {
			t.Fatalf("round %d: the writer committed nothing: %s", round, stderr.String())
		}
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		fs, err := s.Findings()
		if err != nil {
			t.Fatal(err)
		}
		batches := len(fs) / 20
		if len(fs)%20 != 0 || batches < last+1 || batches > last+2 || batches > MaxFindings/20 {
			t.Fatalf("round %d: %d findings after %d committed batches of 20: a batch stored in part", round, len(fs), last+1)
		}
		resolved := 0
		for _, f := range fs {
			if f.Resolved {
				resolved++
			}
		}
		if resolved != batches-1 {
			t.Fatalf("round %d: %d resolved in %d batches, want %d", round, resolved, batches, batches-1)
		}
		t.Logf("round %d: killed after %d committed batches, %d stored", round, last+1, batches)
		s.Close()
	}
}
