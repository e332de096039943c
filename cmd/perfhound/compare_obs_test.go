package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// obsFixtures are the recorded observations (fixtures/observations/manifest.json).
const obsFixtures = "../../fixtures/observations"

// obsDiffJSON is the part of perfhound.obsdiff/v1 the tests read.
type obsDiffJSON struct {
	Schema string `json:"schema"`
	Class  struct {
		Base   string `json:"base"`
		Head   string `json:"head"`
		Change string `json:"change"`
	} `json:"class"`
	Load []struct {
		Class  string  `json:"class"`
		Head   float64 `json:"head"`
		Change string  `json:"change"`
	} `json:"load"`
	Profiles []struct {
		Kind, Source string
	} `json:"profiles"`
	Regressions []string `json:"regressions"`
	Policy      struct {
		Threshold float64 `json:"threshold"`
		FailOn    string  `json:"fail_on"`
	} `json:"policy"`
	Failed bool `json:"failed"`
}

func runObs(t *testing.T, args ...string) (int, obsDiffJSON, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"compare", "--format", "json"}, args...), &out, &errb)
	var d obsDiffJSON
	if code != exitBadInput {
		if err := json.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatalf("compare %q: exit %d, stdout not JSON: %v\n%s\nstderr: %s", args, code, err, out.String(), errb.String())
		}
	}
	return code, d, errb.String()
}

func TestCompareObservations(t *testing.T) {
	cpu, io := filepath.Join(obsFixtures, "cpu-hash"), filepath.Join(obsFixtures, "io-fsync")

	code, d, stderr := runObs(t, cpu, io)
	if code != exitFindings || stderr != "" {
		t.Errorf("cpu-hash vs io-fsync: exit %d (want 1), stderr %q", code, stderr)
	}
	if d.Schema != "perfhound.obsdiff/v1" || d.Class.Base != "cpu" || d.Class.Head != "io" || d.Class.Change != "regression" || !d.Failed {
		t.Errorf("cpu-hash vs io-fsync: %+v, want class cpu → io, a regression, failed", d)
	}
	if len(d.Regressions) == 0 || len(d.Profiles) == 0 {
		t.Errorf("regressions %q, profiles %v: want both", d.Regressions, d.Profiles)
	}

	if code, d, _ := runObs(t, cpu, cpu); code != exitOK || d.Failed || len(d.Regressions) != 0 || d.Class.Change != "unchanged" {
		t.Errorf("cpu-hash vs itself: exit %d (want 0), %+v", code, d)
	}
	if code, _, _ := runObs(t, "--fail-on", "change", "--threshold", "0", cpu, cpu); code != exitOK {
		t.Errorf("cpu-hash vs itself, --fail-on change --threshold 0: exit %d, want 0", code)
	}
	if code, d, _ := runObs(t, "--fail-on", "never", cpu, io); code != exitOK || d.Failed || d.Policy.FailOn != "never" {
		t.Errorf("--fail-on never: exit %d (want 0), failed %v, policy %+v", code, d.Failed, d.Policy)
	}
	if _, d, _ := runObs(t, "--threshold", "12.5", cpu, io); d.Policy.Threshold != 0.125 {
		t.Errorf("--threshold 12.5: policy threshold %v, want 0.125", d.Policy.Threshold)
	}

	// Busy to idle improves: it fails --fail-on change only.
	idle := filepath.Join(obsFixtures, "none-sleep")
	if code, _, _ := runObs(t, cpu, idle); code != exitOK {
		t.Errorf("cpu-hash vs none-sleep: exit %d, want 0 (an improvement)", code)
	}
	if code, _, _ := runObs(t, "--fail-on", "change", cpu, idle); code != exitFindings {
		t.Errorf("cpu-hash vs none-sleep, --fail-on change: exit %d, want 1", code)
	}
}

func TestCompareObservationsOutput(t *testing.T) {
	cpu, io := filepath.Join(obsFixtures, "cpu-hash"), filepath.Join(obsFixtures, "io-fsync")
	for _, tc := range []struct{ format, want string }{
		{"text", "perfhound compare: observations"},
		{"markdown", "### ❌ perfhound compare: FAIL"},
		{"json", `"schema": "perfhound.obsdiff/v1"`},
	} {
		out := filepath.Join(t.TempDir(), "report")
		code, stdout, stderr := runCLI(t, "compare", "-f", tc.format, "-o", out, cpu, io)
		if code != exitFindings || stdout != "" || stderr != "" {
			t.Errorf("%s -o: exit %d (want 1), stdout %q, stderr %q", tc.format, code, stdout, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s report: %v, want %q in:\n%.300s", tc.format, err, tc.want, b)
		}
	}
}

func TestCompareObservationsBadInput(t *testing.T) {
	cpu := filepath.Join(obsFixtures, "cpu-hash")
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench")
	benchRuns(t, bench, 1, 1, map[string]float64{"Parse": 1000})

	for _, args := range [][]string{{cpu, bench}, {bench, cpu}} {
		code, _, stderr := runObs(t, args...)
		if code != exitBadInput || !strings.Contains(stderr, "is a saved observation but") || !strings.Contains(stderr, "Run 'perfhound --help'") {
			t.Errorf("compare %q: exit %d (want 2), stderr %q", args, code, stderr)
		}
	}

	damaged := filepath.Join(dir, "damaged")
	writeFile(t, filepath.Join(damaged, "observation.json"), []byte(`{"format": "perfhound.observation", "version": 1, "meta": `))
	code, _, stderr := runObs(t, cpu, damaged)
	if code != exitBadInput || !strings.Contains(stderr, filepath.Join(damaged, "observation.json")) || !strings.Contains(stderr, "damaged") {
		t.Errorf("damaged head: exit %d (want 2), stderr %q (want it to name the file)", code, stderr)
	}

	if code, _, stderr := runObs(t, "--format", "yaml", cpu, cpu); code != exitBadInput || !strings.Contains(stderr, "unknown format") {
		t.Errorf("--format yaml: exit %d (want 2), stderr %q", code, stderr)
	}
}
