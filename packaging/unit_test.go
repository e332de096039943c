// Package packaging holds what installs perfhound: the agent's systemd
// unit, checked here against systemd and `make install`.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/agent/config"
)

const unitFile = "perfhound-agent.service"

type directive struct {
	section, key, value string
	line                int
}

// parseUnit reads a unit file's directives: sections, key=value lines,
// comments and blank lines; anything else fails the test.
func parseUnit(t *testing.T, path string) []directive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds []directive
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: not a directive: %q", path, n, line)
			}
			ds = append(ds, directive{section, strings.TrimSpace(k), strings.TrimSpace(v), n})
		}
	}
	return ds
}

// TestUnitKeysKnown: every directive is one systemd knows in its section
// (systemd --dump-configuration-items, the manager's own list).
func TestUnitKeysKnown(t *testing.T) {
	ds := parseUnit(t, unitFile)
	systemd := ""
	for _, p := range []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"} {
		if _, err := os.Stat(p); err == nil {
			systemd = p
			break
		}
	}
	if systemd == "" {
		t.Skip("no systemd binary here to list the directives it knows")
	}
	out, err := exec.Command(systemd, "--dump-configuration-items").Output()
	if err != nil {
		t.Fatalf("%s --dump-configuration-items: %v", systemd, err)
	}
	known := map[string]bool{}
	section := ""
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "[") {
			section = line
		} else if k, _, ok := strings.Cut(line, "="); ok {
			known[section+k] = true
		}
	}
	if len(known) < 200 {
		t.Fatalf("systemd listed %d directives: the dump's format changed", len(known))
	}
	for _, d := range ds {
		if !known[d.section+d.key] {
			t.Errorf("%s:%d: %s is not a %s directive systemd knows", unitFile, d.line, d.key, d.section)
		}
	}
}

// TestUnitVerifiesAndScores: systemd-analyze verify finds nothing wrong
// (ExecStart pointed at an executable that exists here), and the
// security exposure stays at most 3.0, the spec's bound.
func TestUnitVerifiesAndScores(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copy := filepath.Join(t.TempDir(), unitFile)
	os.WriteFile(copy, regexp.MustCompile(`(?m)^ExecStart=\S+`).ReplaceAll(text, []byte("ExecStart="+self)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", copy).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", copy).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > 3.0 {
		t.Errorf("exposure %.1f, want at most 3.0", score)
	}
}

// TestMakeInstall stages `make install` in a temporary DESTDIR: the unit's
// ExecStart names the installed binary (at the default PREFIX and another),
// the example config lands in /etc/perfhound once, validates, and is never
// overwritten.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dest := t.TempDir()
	bin := filepath.Join(t.TempDir(), "perfhound")
	install := func(args ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-s", "-C", "..", "install", "DESTDIR=" + dest, "BIN=" + bin}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install %v: %v\n%s", args, err, out)
		}
	}
	execStart := func(unit string) string {
		for _, d := range parseUnit(t, unit) {
			if d.key == "ExecStart" {
				return strings.Fields(d.value)[0]
			}
		}
		t.Fatalf("%s has no ExecStart", unit)
		return ""
	}
	if got := execStart(unitFile); got != "/usr/local/bin/perfhound" {
		t.Errorf("the unit runs %s, not the default PREFIX's /usr/local/bin/perfhound", got)
	}
	install()
	unit := filepath.Join(dest, "usr/local/lib/systemd/system", unitFile)
	exe := execStart(unit)
	if fi, err := os.Stat(filepath.Join(dest, exe)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("ExecStart %s: not installed as an executable: %v", exe, err)
	}
	conf := filepath.Join(dest, "etc/perfhound/agent.yaml")
	c, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("installed config: %v", err)
	}
	if !strings.Contains(string(mustRead(t, unit)), "--config /etc/perfhound/agent.yaml") {
		t.Errorf("%s does not read /etc/perfhound/agent.yaml", unit)
	}

	os.WriteFile(conf, []byte("window: 20s\n"), 0o644)
	install("PREFIX=/usr")
	if got := string(mustRead(t, conf)); got != "window: 20s\n" {
		t.Errorf("make install overwrote an edited config: %q", got)
	}
	exe = execStart(filepath.Join(dest, "usr/lib/systemd/system", unitFile))
	if exe != "/usr/bin/perfhound" {
		t.Errorf("PREFIX=/usr: ExecStart %s", exe)
	}
	if _, err := os.Stat(filepath.Join(dest, exe)); err != nil {
		t.Errorf("PREFIX=/usr: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
