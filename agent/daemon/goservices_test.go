package daemon

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/identity"
)

// A configured Go service running here gets the version its process has
// (the executable's Go build ID, what its eBPF samples get), not the GNU
// build ID its pprof mappings carry (none, for a plain go build): one
// binary, one version.
func TestGoServiceVersionIsItsProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fixtures/goservice")
	}
	bin := filepath.Join(t.TempDir(), "goservice")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "github.com/perfhound/perfhound/fixtures/goservice").CombinedOutput(); err != nil {
		t.Fatalf("building fixtures/goservice: %v\n%s", err, out)
	}
	want, err := exec.Command("go", "tool", "buildid", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-duration", "5m")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := bufio.NewScanner(stdout)
	if !s.Scan() {
		t.Fatal("goservice said nothing")
	}
	url, ok := strings.CutPrefix(s.Text(), "listening on ")
	if !ok {
		t.Fatalf("goservice's first line: %q", s.Text())
	}
	ids, err := identity.New(identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := &goService{cfg: GoService{URL: url, Service: "shop"}}
	defer g.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := g.window(ctx, time.Second, ids)
	if got := o.Meta.Target.Labels[identity.LabelVersion]; got != strings.TrimSpace(string(want)) {
		t.Errorf("version %q, want the process's Go build ID %q", got, strings.TrimSpace(string(want)))
	}
	if g.pid != cmd.Process.Pid {
		t.Errorf("found pid %d behind %s, want %d", g.pid, url, cmd.Process.Pid)
	}
	if len(o.Profiles) == 0 {
		t.Errorf("no profiles scraped: %v", o.Missing)
	}
}
