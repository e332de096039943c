package identity

import (
	"strings"
	"testing"
)

const (
	id1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	id2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// TestParseCgroup reads /proc/PID/cgroup as the kernel writes it under
// each init system and container runtime. Each example's source is in its
// comment; the IDs are replaced by id1/id2.
func TestParseCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, data      string
		path, unit, cid string
		wins            bool
	}{
		// systemd on cgroup v2: a system service (man systemd.special,
		// system.slice; `cat /proc/$(pidof nginx)/cgroup` on Debian 12).
		{name: "v2 system service", data: "0::/system.slice/nginx.service\n",
			path: "/system.slice/nginx.service", unit: "nginx.service"},
		// A service that delegates its subtree (Delegate=yes, e.g.
		// systemd-nspawn, or a service's own sub-cgroups).
		{name: "v2 delegated subgroup", data: "0::/system.slice/foo.service/payload\n",
			path: "/system.slice/foo.service/payload", unit: "foo.service"},
		// A user's service under the user manager (systemd.special:
		// user@.service, app.slice).
		{name: "v2 user app service", data: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n",
			path: "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service", unit: "x.service"},
		// The user manager itself runs in init.scope beneath user@.service.
		{name: "v2 user manager", data: "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
			path: "/user.slice/user-1000.slice/user@1000.service/init.scope", unit: "user@1000.service"},
		// A login session's commands (systemd-logind, session-N.scope).
		{name: "v2 session scope", data: "0::/user.slice/user-1000.slice/session-3.scope\n",
			path: "/user.slice/user-1000.slice/session-3.scope"},
		// systemd itself, PID 1 (systemd.special: init.scope).
		{name: "v2 PID 1", data: "0::/init.scope\n", path: "/init.scope"},
		// systemd-run --unit NAME --scope CMD.
		{name: "v2 transient scope", data: "0::/system.slice/perfhound-test-1.scope\n",
			path: "/system.slice/perfhound-test-1.scope", unit: "perfhound-test-1.scope"},
		// Docker with the systemd cgroup driver (the default on cgroup v2):
		// docs.docker.com "Runtime metrics", /sys/fs/cgroup/system.slice/docker-<id>.scope.
		{name: "v2 docker systemd driver", data: "0::/system.slice/docker-" + id1 + ".scope\n",
			path: "/system.slice/docker-" + id1 + ".scope", cid: id1, wins: true},
		// Docker with the cgroupfs driver, cgroup v1 (hybrid systemd):
		// every controller's line ends in /docker/<id>, while a runc that
		// does not manage the unified hierarchy leaves the 0:: line at
		// the shim's cgroup (containerd.service): the container wins.
		{name: "v1 docker cgroupfs", data: "12:pids:/docker/" + id1 + "\n" +
			"11:memory:/docker/" + id1 + "\n" +
			"1:name=systemd:/docker/" + id1 + "\n" +
			"0::/system.slice/containerd.service\n",
			path: "/system.slice/containerd.service", unit: "containerd.service", cid: id1, wins: true},
		// Same, but the unified line at the root (legacy mode keeps 0::/).
		{name: "v1 docker cgroupfs legacy", data: "12:pids:/docker/" + id1 + "\n" +
			"1:name=systemd:/docker/" + id1 + "\n0::/\n",
			path: "/docker/" + id1, cid: id1, wins: true},
		// Kubernetes, containerd CRI with the systemd driver (kubelet's
		// cgroupDriver: systemd; kubernetes.io "About cgroup v2").
		{name: "v2 kubepods containerd", data: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f.slice/cri-containerd-" + id1 + ".scope\n",
			path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f.slice/cri-containerd-" + id1 + ".scope", cid: id1, wins: true},
		// Kubernetes with the cgroupfs driver, cgroup v1: the container's
		// cgroup is its bare ID beneath the pod's.
		{name: "v1 kubepods cgroupfs", data: "4:memory:/kubepods/burstable/pod1a2b3c4d-5e6f/" + id1 + "\n" +
			"1:name=systemd:/kubepods/burstable/pod1a2b3c4d-5e6f/" + id1 + "\n",
			path: "/kubepods/burstable/pod1a2b3c4d-5e6f/" + id1, cid: id1, wins: true},
		// CRI-O with the systemd driver (crio.conf cgroup_manager =
		// "systemd"): crio-<id>.scope; its monitor in crio-conmon-<id>.scope.
		{name: "v2 cri-o", data: "0::/kubepods.slice/kubepods-pod1.slice/crio-" + id1 + ".scope\n",
			path: "/kubepods.slice/kubepods-pod1.slice/crio-" + id1 + ".scope", cid: id1, wins: true},
		{name: "v2 cri-o conmon", data: "0::/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + id1 + ".scope\n",
			path: "/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + id1 + ".scope"},
		// CRI-O with cgroupfs: crio-<id> without the .scope.
		{name: "v1 cri-o cgroupfs", data: "4:memory:/kubepods/besteffort/pod1/crio-" + id1 + "\n",
			path: "/kubepods/besteffort/pod1/crio-" + id1, cid: id1, wins: true},
		// podman (rootful) on cgroup v2: machine.slice/libpod-<id>.scope
		// (podman-run(1) --cgroup-manager systemd).
		{name: "v2 podman", data: "0::/machine.slice/libpod-" + id1 + ".scope\n",
			path: "/machine.slice/libpod-" + id1 + ".scope", cid: id1, wins: true},
		// podman rootless: under the user's manager, with --cgroups=split's
		// "container" subgroup.
		{name: "v2 podman rootless", data: "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container\n",
			path: "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container",
			unit: "user@1000.service", cid: id1, wins: true},
		// podman with cgroupfs: /libpod_parent/libpod-<id>.
		{name: "v1 podman cgroupfs", data: "3:cpuset:/libpod_parent/libpod-" + id1 + "\n",
			path: "/libpod_parent/libpod-" + id1, cid: id1, wins: true},
		// systemd inside a docker container (--cgroupns=private shows
		// the container's root as /; with host cgroupns the ID comes first).
		{name: "v2 systemd in a container", data: "0::/system.slice/docker-" + id1 + ".scope/system.slice/nginx.service\n",
			path: "/system.slice/docker-" + id1 + ".scope/system.slice/nginx.service", unit: "nginx.service", cid: id1},
		// Nested container IDs: the innermost wins (docker in docker).
		{name: "nested ids", data: "0::/docker/" + id1 + "/docker/" + id2 + "\n",
			path: "/docker/" + id1 + "/docker/" + id2, cid: id2, wins: true},
		// This machine's sandbox: a 32-hex name is no container ID.
		{name: "sandbox", data: "9:name=systemd:/\n4:memory:/process_api/35ae83caaa5ca656f28441f248dcce10\n0::/\n",
			path: "/process_api/35ae83caaa5ca656f28441f248dcce10"},
		{name: "root only", data: "0::/\n", path: "/"},
		{name: "empty", data: ""},
		{name: "garbage", data: "x\n::\n1:cpu\n2:cpu:relative\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseCgroup(tc.data)
			want := cgroupInfo{Path: tc.path, Unit: tc.unit, ContainerID: tc.cid, ContainerWins: tc.wins}
			if got != want {
				t.Errorf("parseCgroup(%q)\n got %+v\nwant %+v", tc.data, got, want)
			}
		})
	}
}

// FuzzParseCgroup: any bytes parse without panicking into an info whose
// fields keep their forms.
//
//	go test ./agent/identity -run '^$' -fuzz '^FuzzParseCgroup$' -fuzztime 60s
func FuzzParseCgroup(f *testing.F) {
	f.Add("0::/system.slice/nginx.service\n")
	f.Add("1:name=systemd:/docker/" + id1 + "\n0::/\n")
	f.Add("0::/kubepods.slice/a.slice/cri-containerd-" + id1 + ".scope\n")
	f.Add("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container\n")
	f.Add("0::/user.slice/user-1000.slice/session-3.scope\n")
	f.Fuzz(func(t *testing.T, data string) {
		got := parseCgroup(data)
		if got.Path != "" && !strings.HasPrefix(got.Path, "/") {
			t.Errorf("path %q is not absolute", got.Path)
		}
		if got.ContainerID != "" && !isContainerID(got.ContainerID) {
			t.Errorf("container ID %q is not 64 hex digits", got.ContainerID)
		}
		if u := got.Unit; u != "" && (strings.Contains(u, "/") || !strings.HasSuffix(u, ".service") && !strings.HasSuffix(u, ".scope")) {
			t.Errorf("unit %q is not a unit name", u)
		}
		if got.ContainerWins != (got.ContainerID != "") && got.Unit == "" {
			t.Errorf("without a unit the container must win exactly when there is one: %+v", got)
		}
		if got.ContainerWins && got.ContainerID == "" {
			t.Errorf("no container wins: %+v", got)
		}
		if !strings.Contains(data, got.Unit) || !strings.Contains(data, got.ContainerID) || !strings.Contains(data, got.Path) {
			t.Errorf("%+v holds what the input does not", got)
		}
	})
}
