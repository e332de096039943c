package identity

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cgroupMounts finds the cgroup v2 mount and the v1 name=systemd one in
// this process's mountinfo ("" when absent).
func cgroupMounts(t *testing.T) (unified, systemd string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch {
		case g[0] == "cgroup2" && unified == "":
			unified = f[4]
		case g[0] == "cgroup" && strings.Contains(","+g[2]+",", ",name=systemd,") && systemd == "":
			systemd = f[4]
		}
	}
	return unified, systemd
}

// moveTo makes the cgroup rel under mount and moves pid into it; the
// test's cleanup (after the process is reaped) removes the directories.
func moveTo(t *testing.T, mount, rel string, pid int) {
	t.Helper()
	dir := filepath.Join(mount, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("cannot make cgroup %s (needs root and a writable cgroup mount): %v", dir, err)
	}
	t.Cleanup(func() {
		for d := dir; d != mount && strings.HasPrefix(d, mount); d = filepath.Dir(d) {
			os.Remove(d)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Skipf("cannot move PID %d into %s: %v", pid, dir, err)
	}
}

// TestLiveCgroups moves real processes into cgroups laid out as systemd
// and the container runtimes lay them out (the kernel then writes their
// /proc/PID/cgroup), on cgroup v2 and on v1's name=systemd hierarchy.
func TestLiveCgroups(t *testing.T) {
	unified, v1 := cgroupMounts(t)
	out := filepath.Join(t.TempDir(), "worker")
	buildGo(t, out, "cg")
	top := randomName(t)
	cid := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name, rel, service, unit, container string
		rules                               []Rule
	}{
		{name: "system service", rel: "system.slice/" + top + ".service", service: top, unit: top + ".service"},
		{name: "user app", rel: "user.slice/user-0.slice/user@0.service/app.slice/" + top + "-app.service", service: top + "-app", unit: top + "-app.service"},
		{name: "session scope", rel: "user.slice/user-0.slice/session-77.scope", service: "worker"},
		{name: "docker scope", rel: "system.slice/docker-" + cid + ".scope", service: cid[:12], container: cid},
		{name: "kubepods", rel: "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-" + cid + ".scope", service: cid[:12], container: cid},
		{name: "rule on unit", rel: "system.slice/" + top + "-ruled.service", service: "ruled", unit: top + "-ruled.service",
			rules: []Rule{{Service: "ruled", Unit: "perfhound-test-*-ruled.service"}}},
		{name: "rule on container", rel: "system.slice/docker-" + cid + ".scope", service: "in-docker", container: cid,
			rules: []Rule{{Service: "in-docker", Container: cid[:12]}}},
	}
	for _, h := range []struct{ name, mount string }{{"v2", unified}, {"v1 name=systemd", v1}} {
		t.Run(h.name, func(t *testing.T) {
			if h.mount == "" {
				t.Skipf("no %s cgroup hierarchy mounted", h.name)
			}
			t.Cleanup(func() { os.Remove(filepath.Join(h.mount, top)) })
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := startProg(t, out)
					moveTo(t, h.mount, filepath.Join(top, tc.rel), p.pid())
					t.Cleanup(p.stop) // runs before moveTo's: the cgroup is empty when removed
					id := resolve(t, newResolver(t, Options{Rules: tc.rules}), p.pid())
					if id.Service != tc.service || id.Labels[LabelUnit] != tc.unit || id.Labels[LabelContainer] != tc.container {
						b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid()), "cgroup"))
						t.Errorf("%+v, want service %q unit %q container %q; /proc/PID/cgroup:\n%s", id, tc.service, tc.unit, tc.container, b)
					}
				})
			}
		})
	}
}

// TestSystemdRunScope runs a program in a scope systemd makes
// (systemd-run --scope --unit NAME): the unit is its service.
func TestSystemdRunScope(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		comm, _ := os.ReadFile("/proc/1/comm")
		t.Skipf("systemd is not the init system here (PID 1 is %q, no /run/systemd/system): systemd-run cannot make units", strings.TrimSpace(string(comm)))
	}
	run, err := exec.LookPath("systemd-run")
	if err != nil {
		t.Skipf("no systemd-run: %v", err)
	}
	out := filepath.Join(t.TempDir(), "scoped")
	buildGo(t, out, "scope")
	unit := randomName(t)
	p := startProg(t, run, "--quiet", "--scope", "--unit", unit, "--collect", out)
	id := resolve(t, newResolver(t, Options{}), p.pid())
	if id.Service != unit || id.Labels[LabelUnit] != unit+".scope" || id.Labels[LabelExe] != "scoped" {
		t.Errorf("%+v, want service %s, unit %s.scope, exe scoped", id, unit, unit)
	}
}
