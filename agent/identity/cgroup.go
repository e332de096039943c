package identity

import (
	"strings"
)

// cgroupInfo is what /proc/PID/cgroup says about a process's identity.
type cgroupInfo struct {
	// Path is the cgroup path rules match: the unified (v2, "0::") path
	// when it is not the root, else the v1 name=systemd path when it is
	// not, else the first other non-root path, else "/" (or "" for an
	// empty file).
	Path string
	// Unit is the innermost systemd unit (a .service or .scope, without
	// session, init and container scopes) of the first path that has
	// one; "" when there is none.
	Unit string
	// ContainerID is the innermost container's full ID (64 hex digits)
	// of the first path that has one; "" when the process is in no
	// container this package recognises.
	ContainerID string
	// ContainerWins is true when the container, not the unit, names the
	// service: there is no unit, or the container's component lies
	// deeper in the path than the unit's (a runtime's containers inside
	// its own service's cgroup), or the unit's path holds no container
	// while another hierarchy's does. systemd inside a container is the
	// other way round: the unit is deeper.
	ContainerWins bool
}

// parseCgroup reads the text of /proc/PID/cgroup: lines
// "hierarchy-ID:controllers:path". Paths are searched for a unit and a
// container in the order Path is chosen (unified, name=systemd, the
// rest); the first path that holds each gives it. Malformed lines are
// skipped.
func parseCgroup(data string) cgroupInfo {
	var unified, systemd string
	var others []string
	for line := range strings.SplitSeq(data, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrl, p, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		switch {
		case id == "0" && ctrl == "":
			unified = p
		case ctrl == "name=systemd":
			systemd = p
		default:
			others = append(others, p)
		}
	}
	var order []string
	for _, p := range append([]string{unified, systemd}, others...) {
		if p != "" {
			order = append(order, p)
		}
	}
	var info cgroupInfo
	for _, p := range order {
		if p != "/" {
			info.Path = p
			break
		}
	}
	if info.Path == "" && len(order) > 0 {
		info.Path = "/"
	}
	unitPath, cidPath := -1, -1
	for i, p := range order {
		if u, _ := unitOf(p); u != "" && unitPath < 0 {
			info.Unit, unitPath = u, i
		}
		if c, _ := containerOf(p); c != "" && cidPath < 0 {
			info.ContainerID, cidPath = c, i
		}
	}
	switch {
	case info.ContainerID == "" || info.Unit == "":
		info.ContainerWins = info.ContainerID != ""
	case cidPath == unitPath:
		_, ud := unitOf(order[unitPath])
		_, cd := containerOf(order[cidPath])
		info.ContainerWins = cd > ud
	default:
		// The unit's path holds no container, another hierarchy's does:
		// the unit is the runtime's own (runc that left the unified
		// line at the shim's cgroup), the process is the container's.
		cid, _ := containerOf(order[unitPath])
		info.ContainerWins = cid == ""
	}
	return info
}

// unitOf returns the innermost systemd unit among p's components and its
// depth (-1 when none). Session scopes (every login's commands) and
// init.scope (a systemd manager itself: under user@UID.service the user
// unit is then the innermost) are no service; container scopes are
// containers.
func unitOf(p string) (unit string, depth int) {
	depth = -1
	for i, c := range strings.Split(p, "/") {
		if !strings.HasSuffix(c, ".service") && !strings.HasSuffix(c, ".scope") {
			continue
		}
		if len(c) <= len(".scope") || c == "init.scope" || strings.HasPrefix(c, "session-") && strings.HasSuffix(c, ".scope") {
			continue
		}
		if isRuntimeScope(c) {
			continue
		}
		unit, depth = c, i
	}
	return unit, depth
}

// containerOf returns the innermost container ID among p's components
// and its depth (-1 when none). The forms, each from its runtime:
//
//	docker (cgroupfs driver):    /docker/<id>
//	docker (systemd driver):     /system.slice/docker-<id>.scope
//	containerd CRI (systemd):    /kubepods.slice/.../cri-containerd-<id>.scope
//	containerd CRI (cgroupfs):   /kubepods/burstable/pod<uid>/<id>
//	CRI-O:                       /kubepods.slice/.../crio-<id>.scope, /kubepods/.../crio-<id>
//	podman:                      /machine.slice/libpod-<id>.scope, /libpod_parent/libpod-<id>
//
// A bare 64-hex component is an ID whatever its parent (docker, the
// kubelet's cgroupfs layout, CI runners' nesting); the monitors' own
// scopes (crio-conmon-, libpod-conmon-) are not the container.
func containerOf(p string) (id string, depth int) {
	depth = -1
	for i, c := range strings.Split(p, "/") {
		if isContainerID(c) {
			id, depth = c, i
			continue
		}
		if cid, ok := scopeContainer(c); ok {
			id, depth = cid, i
		}
	}
	return id, depth
}

// scopeContainer recognises "<runtime>-<id>" and "<runtime>-<id>.scope".
func scopeContainer(c string) (string, bool) {
	c = strings.TrimSuffix(c, ".scope")
	i := strings.LastIndexByte(c, '-')
	if i < 0 || !isContainerID(c[i+1:]) {
		return "", false
	}
	switch c[:i] {
	case "docker", "cri-containerd", "crio", "libpod":
		return c[i+1:], true
	}
	return "", false
}

// isRuntimeScope is true of "<anything>-<id>.scope": a container's or
// its monitor's (crio-conmon-, libpod-conmon-) scope, never a service.
func isRuntimeScope(c string) bool {
	c, ok := strings.CutSuffix(c, ".scope")
	i := strings.LastIndexByte(c, '-')
	return ok && i >= 0 && isContainerID(c[i+1:])
}

// isContainerID is true of 64 lower-case hex digits, the form docker,
// containerd, CRI-O and podman all give their containers' IDs.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// shortID is the 12-digit form `docker ps` shows.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
