package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// watchShort is a diagnose of a short command without eBPF: the cheapest
// window that still runs every step from the checks to the report. The
// command touches marker as the window starts, so a test can tell that
// a refusal came before the window was spent.
func watchShort(marker string, extra ...string) []string {
	args := append([]string{"diagnose", "--no-ebpf", "-d", "1s", "-f", "json"}, extra...)
	return append(args, "--", "sh", "-c", `touch "$0"; sleep 0.8`, marker)
}

// TestDiagnoseSaveKeepsUsersFiles saves over a directory that holds an
// observation and a user's own files: nothing of theirs may go, and an
// observation is replaced only when asked to.
func TestDiagnoseSaveKeepsUsersFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "obs")
	marker := filepath.Join(root, "ran")
	if code, _, errb := runCLI(t, watchShort(marker, "--save", dir)...); code != 0 {
		t.Fatalf("first save: exit %d: %s", code, errb)
	}
	index := filepath.Join(dir, "observation.json")
	first, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	notes := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("what I changed before this run"))
	mine := writeFile(t, filepath.Join(dir, "mine", "data.csv"), []byte("1,2,3"))
	kept := func(t *testing.T) {
		t.Helper()
		for _, f := range []string{notes, mine} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("the user's %s is gone: %v", f, err)
			}
		}
		if b, err := os.ReadFile(index); err != nil || !bytes.Equal(b, first) {
			t.Fatalf("the saved observation changed (%v)", err)
		}
	}
	refused := func(t *testing.T, want string, args ...string) {
		t.Helper()
		os.Remove(marker)
		code, out, errb := runCLI(t, watchShort(marker, args...)...)
		kept(t)
		if code != exitBadInput || !strings.Contains(errb, want) || out != "" {
			t.Fatalf("exit %d, stderr %q, %d bytes on stdout; want exit %d saying %q and no report", code, errb, len(out), exitBadInput, want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the refusal came after the window was spent")
		}
	}
	t.Run("save over an observation", func(t *testing.T) {
		refused(t, "already holds an observation", "--save", dir)
	})
	t.Run("overwrite with a user's file inside", func(t *testing.T) {
		refused(t, "notes.txt", "--save", dir, "--overwrite")
	})
	t.Run("overwrite a lone observation", func(t *testing.T) {
		os.Remove(notes)
		os.RemoveAll(filepath.Dir(mine))
		if code, _, errb := runCLI(t, watchShort(marker, "--save", dir, "--overwrite")...); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if b, err := os.ReadFile(index); err != nil || bytes.Equal(b, first) {
			t.Fatalf("the observation was not replaced (%v)", err)
		}
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".obs") {
				t.Errorf("left behind: %s", e.Name())
			}
		}
	})
}

// watchThen is a short diagnose of a command that runs script (sh, with
// args as $1...) as the window starts, and lives 0.8 s: what it does
// happens after every check made before the window, and before anything
// is written.
func watchThen(script string, scriptArgs []string, extra ...string) []string {
	args := append([]string{"diagnose", "--no-ebpf", "-d", "1s", "-f", "json"}, extra...)
	args = append(args, "--", "sh", "-c", script+"; sleep 0.8", "sh")
	return append(args, scriptArgs...)
}

// keptAt returns the path the stderr of a diagnose that could not write
// where asked names as where it kept its result instead.
func keptAt(t *testing.T, stderr, what string) string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, what) && strings.HasSuffix(line, " instead") {
			f := strings.Fields(line)
			return f[len(f)-2]
		}
	}
	t.Fatalf("stderr does not say where the %s went:\n%s", what, stderr)
	return ""
}

// TestDiagnoseOutputFailsLate makes writing the report fail after the
// checks before the window passed: the report is kept, stderr says
// where, and the exit status says it is not where asked.
func TestDiagnoseOutputFailsLate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	root := t.TempDir()
	cases := []struct {
		name   string
		output string
		script string // sabotage, run as the window starts; $1 is the output
	}{
		{"its directory replaced by a file", filepath.Join(root, "gone", "report.json"), `d=$(dirname "$1"); rm -r "$d"; touch "$d"`},
		{"a full device", "/dev/full", "true"},
	}
	if _, err := exec.LookPath("chattr"); err == nil && os.Geteuid() == 0 {
		// An immutable file cannot be replaced, even by root: the rename
		// fails.
		cases = append(cases, struct{ name, output, script string }{"an immutable report", filepath.Join(root, "immutable", "report.json"), `chattr +i "$1"`})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.output != "/dev/full" {
				writeFile(t, c.output, []byte("last week's report"))
				t.Cleanup(func() { exec.Command("chattr", "-i", c.output).Run() })
			}
			code, out, errb := runCLI(t, watchThen(c.script, []string{c.output}, "-o", c.output)...)
			if code != exitNotSaved {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, exitNotSaved, errb)
			}
			if out != "" {
				t.Errorf("the report went to stdout as well")
			}
			kept := keptAt(t, errb, "report")
			if !strings.HasPrefix(kept, tmp) || !strings.HasSuffix(kept, ".json") {
				t.Errorf("report kept in %s, want a .json file in TMPDIR %s", kept, tmp)
			}
			b, err := os.ReadFile(kept)
			if err != nil {
				t.Fatal(err)
			}
			if d := parseDiagnosis(t, string(b)); d.Verdict.Target.Kind != "command" {
				t.Errorf("the kept report is of %q, want the command", d.Verdict.Target.Kind)
			}
			if !strings.Contains(c.name, "immutable") {
				return // the old report is gone with its directory, or /dev/full (zeros without end)
			}
			if b, err := os.ReadFile(c.output); err != nil || string(b) != "last week's report" {
				t.Errorf("the report file it could not replace is now %q (%v)", b, err)
			}
		})
	}
	t.Run("and no temporary directory either", func(t *testing.T) {
		t.Setenv("TMPDIR", "/proc/self/none")
		code, out, errb := runCLI(t, watchThen("true", nil, "-o", "/dev/full")...)
		if code != exitNotSaved || !strings.Contains(errb, "on stdout instead") {
			t.Fatalf("exit %d, want %d saying the report is on stdout\nstderr: %s", code, exitNotSaved, errb)
		}
		parseDiagnosis(t, out)
	})
}

// TestDiagnoseSaveFailsLate makes saving the observation fail after the
// checks: it is kept in a temporary directory, the report is written as
// asked, and stderr and the exit status say so.
func TestDiagnoseSaveFailsLate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	parent := filepath.Join(t.TempDir(), "runs")
	dir := filepath.Join(parent, "obs")
	code, out, errb := runCLI(t, watchThen(`mkdir -p "$1"; rm -r "$1"; touch "$1"`, []string{parent}, "--save", dir)...)
	if code != exitNotSaved {
		t.Fatalf("exit %d, want %d\nstderr: %s", code, exitNotSaved, errb)
	}
	d := parseDiagnosis(t, out)
	kept := keptAt(t, errb, "observation")
	if !strings.HasPrefix(kept, tmp) {
		t.Errorf("observation kept in %s, want TMPDIR %s", kept, tmp)
	}
	if !strings.Contains(errb, "observation saved to "+kept) {
		t.Errorf("stderr does not say how to use the kept observation:\n%s", errb)
	}
	code, again, errb := runCLI(t, "analyze", "-f", "json", kept)
	if code != 0 || again != out {
		t.Fatalf("analyze of the kept observation: exit %d %s; same report: %v", code, errb, again == out)
	}
	if d.Verdict.Target.Kind != "command" {
		t.Errorf("target %q", d.Verdict.Target.Kind)
	}
}

// TestDiagnoseOutputRefusedEarly: what can be known before the window is
// refused before it.
func TestDiagnoseOutputRefusedEarly(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "/sys/kernel/perfhound-report.json"}, "sysfs"},
		{[]string{"-o", "/proc/self/comm"}, "procfs"},
		{[]string{"-o", "/proc/sys/kernel/perfhound-report.json"}, "procfs"},
		{[]string{"--save", "/sys/kernel/perfhound-obs"}, "sysfs"},
		{[]string{"--save", "/proc/self/perfhound-obs"}, "procfs"},
		{[]string{"-o", filepath.Join(t.TempDir(), "missing", "report.json")}, "no such file"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			os.Remove(marker)
			code, out, errb := runCLI(t, watchShort(marker, c.args...)...)
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the window was spent: exit %d, stderr %q", code, errb)
			}
			if code != exitBadInput || !strings.Contains(errb, c.want) || out != "" {
				t.Fatalf("exit %d, stderr %q; want exit %d saying %q and no report", code, errb, exitBadInput, c.want)
			}
		})
	}
}

// TestDiagnoseIntervalFloor: an interval that would make perfhound's own
// readings the host's load is refused before the window; the floors
// themselves are accepted.
func TestDiagnoseIntervalFloor(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"host at 1ms", []string{"diagnose", "--no-ebpf", "-d", "1s", "--interval", "1ms", "-f", "json"}},
		{"host at 249ms", []string{"diagnose", "--no-ebpf", "-d", "1s", "--interval", "249ms", "-f", "json"}},
		{"command at 500ms", watchShort(marker, "--interval", "500ms")},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runCLI(t, c.args...)
			if code != exitBadInput || out != "" || !strings.Contains(errb, "interval too short") || !strings.Contains(errb, "1% of one core") {
				t.Fatalf("exit %d, stderr %q, %d bytes of report: want a usage error naming the floor and why", code, errb, len(out))
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("refused after the window was spent")
			}
		})
	}
	for _, c := range [][]string{
		{"diagnose", "--no-ebpf", "-d", "1s", "--interval", "250ms", "-f", "json"},
		watchShort(marker, "--interval", "750ms"),
	} {
		if code, out, errb := runCLI(t, c...); code != 0 {
			t.Errorf("%v: exit %d: %s", c, code, errb)
		} else {
			parseDiagnosis(t, out)
		}
	}
}
