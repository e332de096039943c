package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/analyzer/verdict"
)

// buildDeployapp builds fixtures/deployapp to out with the given -X
// settings (each build a new Go build ID).
func buildDeployapp(t *testing.T, out string, xs ...string) {
	t.Helper()
	var ld []string
	for _, x := range xs {
		ld = append(ld, "-X", "main."+x)
	}
	cmd := exec.Command("go", "build", "-buildvcs=false", "-ldflags", strings.Join(ld, " "), "-o", out, "../../fixtures/deployapp")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build deployapp %v: %v\n%s", xs, err, b)
	}
}

// deploy puts the build at src in place at path (the running version
// stopped first, as a deploy does) and starts it serving at addr, where
// loadService sends it 1000 requests a second: at 300 the two-minute
// base held under a thousand samples at 99 Hz on a loaded runner, too
// few for main.render's rise to pass the detector's corrections in 10 min.
func deploy(t *testing.T, running *exec.Cmd, src, path, addr string) *exec.Cmd {
	t.Helper()
	if running != nil {
		running.Process.Kill()
		running.Wait()
	}
	install(t, src, path)
	return startSubject(t, path, "-rate", "0", "-listen", addr, "-duration", "25m")
}

// install copies the build at src to path as a new file, as a package
// manager writes it.
func install(t *testing.T, src, path string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// loadService sends 1000 requests a second to the service at addr from a
// process of its own (a copy of the build at src at path, which no rule
// names), for the whole test, across its deploys: the service's profile
// is its server's alone, as a real service's is. A client in the
// service's process made its own code part of the profile, whose cost
// moves with how long it waits on the server: on a loaded runner the same
// build redeployed raised roundTrip +125% when its neighbour got busier.
func loadService(t *testing.T, src, path, addr string) {
	t.Helper()
	install(t, src, path)
	startSubject(t, path, "-target", "http://"+addr, "-rate", "1000", "-duration", "25m")
}

// regressions is what /api/v1/regressions lists for service.
func (a *agentProc) regressions(t *testing.T, service string) []regress.Finding {
	t.Helper()
	code, body := a.get(t, "/api/v1/regressions?service="+service, "")
	if code == http.StatusNotFound {
		return nil // not seen yet
	}
	if code != http.StatusOK {
		t.Fatalf("/api/v1/regressions: %d %s", code, body)
	}
	var out struct {
		Regressions []regress.Finding `json:"regressions"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("/api/v1/regressions: %v\n%s", err, body)
	}
	return out.Regressions
}

// TestAgentDeployRegression is the live test of regression
// detection: a Go service under a steady request rate (fixtures/deployapp)
// is deployed twice at one path, the second build running its own loop 1.5 times as long
// in main.render (30% of a request's CPU); a second service is deployed
// the same way with the same code both times. Between the two deploys the
// agent is killed with SIGKILL and started again on the same store. The
// agent must report the slowed service's new version with main.render to
// blame, and nothing for the other, though it sampled the new versions
// at twice the base's rate (the boost of a fresh deploy).
func TestAgentDeployRegression(t *testing.T) {
	requireAgentEBPF(t)
	if testing.Short() {
		t.Skip("live agent test: skipped in -short mode")
	}
	dir := t.TempDir()
	builds := filepath.Join(dir, "builds")
	os.MkdirAll(builds, 0o755)
	v1, slow, same := filepath.Join(builds, "v1"), filepath.Join(builds, "v2-slow"), filepath.Join(builds, "v2-same")
	buildDeployapp(t, v1, "release=1")
	buildDeployapp(t, slow, "release=2", "slowFunc=main.render", "slowFactor=1.5")
	buildDeployapp(t, same, "release=2")

	// Rules name the two services whatever unit or container the test
	// runs in.
	slowPath, samePath := filepath.Join(dir, "slowsvc", "app"), filepath.Join(dir, "samesvc", "app")
	os.MkdirAll(filepath.Dir(slowPath), 0o755)
	os.MkdirAll(filepath.Dir(samePath), 0o755)
	// The boost is the default's (99 Hz).
	cfg := writeFile(t, filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(
		"services:\n  - service: deploy-slow\n    exe: %s\n  - service: deploy-same\n    exe: %s\n", slowPath, samePath)))
	data := filepath.Join(dir, "data")
	args := append([]string{"--config", cfg, "--data-dir", data, "--listen", "127.0.0.1:0",
		"--window", "5s", "--interval", "5s", "--frequency", "49"}, ebpfFlag()...)

	a := startAgent(t, args...)
	slowAddr, sameAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	slowCmd := deploy(t, nil, v1, slowPath, slowAddr)
	sameCmd := deploy(t, nil, v1, samePath, sameAddr)
	loadService(t, v1, filepath.Join(builds, "load-slow"), slowAddr)
	loadService(t, v1, filepath.Join(builds, "load-same"), sameAddr)
	// The base: version 1 of both for a while.
	a.waitFor(t, "both services' first version", func() (bool, string) {
		s := a.services(t, "")
		return len(s["deploy-slow"].Versions) == 1 && len(s["deploy-same"].Versions) == 1, fmt.Sprintf("%+v", s)
	})
	// The base is long enough when it holds baseSamples of each
	// service's code (what the detector compares): about 3 minutes on an
	// idle machine, longer on a loaded one, where the services get less of
	// the CPU.
	var checked time.Time
	var vs map[string]agentService
	a.waitWithin(t, 15*time.Minute, fmt.Sprintf("a base of %d samples of each service's code", baseSamples), func() (bool, string) {
		if time.Since(checked) < 5*time.Second { // a window
			return false, ""
		}
		checked, vs = time.Now(), a.services(t, "")
		slowN := a.codeSamples(t, "deploy-slow", vs["deploy-slow"].Versions[0].Version)
		sameN := a.codeSamples(t, "deploy-same", vs["deploy-same"].Versions[0].Version)
		return slowN >= baseSamples && sameN >= baseSamples, fmt.Sprintf("%.0f and %.0f", slowN, sameN)
	})
	// SIGKILL between the deploys, and a new agent on the same store.
	a.stop(t, syscall.SIGKILL)
	a = startAgent(t, args...)
	a.waitFor(t, "the replay", func() (bool, string) {
		return strings.Contains(a.logText(), `msg="regression detection started"`), "not yet"
	})

	deployed := time.Now()
	deploy(t, slowCmd, slow, slowPath, slowAddr)
	deploy(t, sameCmd, same, samePath, sameAddr)
	var found []regress.Finding
	// The looks are at 1, 2, 3, 5 and 10 minutes of the new version. The
	// base is sampled at 49 Hz, the new versions at the boost's 99 Hz for
	// their first 5 minutes (regressions.boost, on by default): the
	// first looks suffice on an idle machine; a loaded runner samples the
	// service less and may need the later ones. The wait ends at the
	// finding, or once the store holds the new version's windows past its
	// 10-minute look (the detector looks as each window is stored, so that
	// look has run): a loaded runner stores windows late (CI's were 90 s
	// behind the clock), so the bound is the windows', and the clock's
	// only catches an agent that stopped storing.
	opts := regress.DefaultVersionOptions()
	const lastLook = 10 * time.Minute
	var compared time.Time
	var comparison string
	a.waitWithin(t, 25*time.Minute, "the slowed service's regression", func() (bool, string) {
		found = a.regressions(t, "deploy-slow")
		for _, f := range found {
			if f.Kind == regress.KindVersion {
				return true, ""
			}
		}
		vs := a.services(t, "")["deploy-slow"].Versions
		if len(vs) >= 2 && vs[len(vs)-1].Last.Sub(vs[len(vs)-1].First) > lastLook+2*5*time.Second {
			var looks strings.Builder
			for _, look := range opts.Looks {
				if look <= lastLook {
					fmt.Fprintf(&looks, "\n\tat %v: %s", look, a.lookComparison(t, "deploy-slow", vs[0], vs[len(vs)-1], opts.Warmup, look))
				}
			}
			t.Fatalf("the slowed service's regression: not found at the looks of its first %v (%d findings); what each look compared:%s", lastLook, len(found), looks.String())
		}
		if time.Since(compared) > 30*time.Second { // what the detector sees, should the wait fail
			compared, comparison = time.Now(), a.versionComparison(t, "deploy-slow")
		}
		return false, fmt.Sprintf("%d findings; the versions compared now: %s", len(found), comparison)
	})
	var first *regress.Finding
	for i := range found {
		if found[i].Kind == regress.KindVersion {
			first = &found[i]
			break
		}
	}
	if first.Function != "main.render" || first.ChangePct <= 0 || first.BaseVersion == first.HeadVersion {
		t.Errorf("blamed %s (%+.1f%%, %s → %s), want main.render slower in the new version:\n%+v",
			first.Function, first.ChangePct, first.BaseVersion, first.HeadVersion, *first)
	}
	// The deploys were sampled faster, and the detector compared windows
	// at both rates.
	if !boosted(a.logText(), "deploy-slow") {
		t.Errorf("no boost of deploy-slow in the agent's log:\n%s", a.logText())
	}
	t.Logf("found after %v: %s %+.1f%% (CI %+.1f..%+.1f%%), p = %.2g, %s → %s",
		first.DetectedAt.Sub(deployed).Round(time.Second), first.Function, first.ChangePct, first.CILow, first.CIHigh,
		first.PValue, first.BaseVersion, first.HeadVersion)

	// The same code deployed again is not a regression: its head is looked
	// at as long as the slowed one's was, and then some.
	waited := time.Since(deployed)
	a.waitFor(t, "the same service's looks", func() (bool, string) {
		return time.Since(deployed) > waited+time.Minute, ""
	})
	for _, f := range a.regressions(t, "deploy-same") {
		if f.Kind == regress.KindVersion {
			t.Errorf("the same code deployed again raised %s on %s (%+.1f%%, p = %.2g)", f.Kind, f.Function, f.ChangePct, f.PValue)
		}
	}
}

// baseSamples is the least samples of each service's code the test's
// base holds. A loaded runner gives the services less of the CPU: at 49
// Hz with two busy loops on the two cores, three minutes held 960 of
// deploy-slow's, and main.render's rise (+33% measured) stayed at p 0.001
// for 10 minutes of the new version, short of the look's corrections.
const baseSamples = 2500

// codeSamples is how many samples of service's version the agent stored
// that ran its own code (a user-space leaf: what the detector compares).
func (a *agentProc) codeSamples(t *testing.T, service, version string) float64 {
	t.Helper()
	q := url.Values{"service": {service}, "version": {version}, "type": {"cpu"}}
	code, body := a.get(t, "/api/v1/profile?"+q.Encode(), "")
	if code == http.StatusNotFound {
		return 0
	}
	if code != http.StatusOK {
		t.Fatalf("/api/v1/profile: %d %s", code, body)
	}
	p, err := profile.ParseData(body)
	if err != nil {
		t.Fatalf("/api/v1/profile: %v", err)
	}
	// Counted as the detector counts them (regress.WindowOf).
	o := observation.Observation{Profiles: []observation.Profile{{Kind: observation.KindCPU, Source: observation.SourceEBPF, Profile: p}}}
	return regress.WindowOf(&o, service, version, verdict.Summary{}).CPU.Samples
}

// versionComparison is the detector's comparison of service's first and
// last versions (/api/v1/diff's functions section) in a line.
func (a *agentProc) versionComparison(t *testing.T, service string) string {
	t.Helper()
	vs := a.services(t, "")[service].Versions
	if len(vs) < 2 {
		return fmt.Sprintf("%d versions", len(vs))
	}
	return a.comparison(t, service, vs[0].Version, vs[len(vs)-1].Version)
}

// lookComparison is what the detector compared at the look at age look
// of head's deployment: base whole (it ran less than the base's 30
// minutes) against head's windows from its warm-up to the look.
func (a *agentProc) lookComparison(t *testing.T, service string, base, head agentVersion, warmup, look time.Duration) string {
	t.Helper()
	span := head.First.Add(warmup).UTC().Format(time.RFC3339) + "/" + head.First.Add(look).UTC().Format(time.RFC3339)
	return a.comparison(t, service, base.Version, span)
}

// comparison is the detector's comparison of base and head (versions or
// FROM/TO spans: /api/v1/diff's functions section) in a line: the
// common factor, the load, and the five lowest p-values' tests with the
// functions behind their outcomes (what held or shifted a rise).
func (a *agentProc) comparison(t *testing.T, service, base, head string) string {
	t.Helper()
	q := url.Values{"service": {service}, "base": {base}, "head": {head}}
	code, body := a.get(t, "/api/v1/diff?"+q.Encode(), "")
	if code != http.StatusOK {
		return fmt.Sprintf("/api/v1/diff: %d %s", code, body)
	}
	var out struct {
		Functions struct {
			*regress.Comparison
			Error string `json:"error"`
		} `json:"functions"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Sprintf("/api/v1/diff: %v", err)
	}
	c := out.Functions
	if c.Error != "" || c.Comparison == nil {
		return c.Error
	}
	var b strings.Builder
	fmt.Fprintf(&b, "c %.3f, load %.3f (fell %v), base %d windows %.0f samples, head %d windows %.0f samples",
		c.Common, c.Load, c.LoadFell, c.Base.Windows, c.Base.Samples, c.Head.Windows, c.Head.Samples)
	for i, f := range c.Functions {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "; %s %s %.4g→%.4g (expected %.4g) %+.1f%% p %.2g %s", f.Function, f.Measure, f.Base, f.Head, f.Expected, f.ChangePct, f.PValue, f.Outcome)
		if len(f.Related) > 0 {
			fmt.Fprintf(&b, " %v", f.Related)
		}
	}
	return b.String()
}

// boosted tells whether the agent's log has a boost to 99 Hz naming
// service among the services deploying (its services= field).
func boosted(log, service string) bool {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="sampling faster for a deploy" hz=99 `) {
			continue
		}
		_, list, ok := strings.Cut(line, " services=")
		if ok && slices.Contains(strings.Split(strings.Fields(list)[0], ","), service) {
			return true
		}
	}
	return false
}
