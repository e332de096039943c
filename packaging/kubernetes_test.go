package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/perfhound/perfhound/agent/config"
)

const (
	manifestFile   = "kubernetes/perfhound-agent.yaml"
	dockerfile     = "Dockerfile"
	dataDir        = config.DefaultDataDir
	cgroupFS       = "/sys/fs/cgroup"
	configMountDir = "/etc/perfhound"
)

// manifest is the manifest's objects, each decoded strictly into the
// Kubernetes API's own type: a field the API does not have (a typo, a
// field at the wrong level) fails the decoding, as the API server would
// refuse it.
type manifest struct {
	daemonSet *appsv1.DaemonSet
	configMap *corev1.ConfigMap
	kinds     []string
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	var m manifest
	for i, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(mustRead(t, manifestFile)), -1) {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s document %d: %v", manifestFile, i, err)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "v1 ConfigMap":
			m.configMap = &corev1.ConfigMap{}
			obj = m.configMap
		case "apps/v1 DaemonSet":
			m.daemonSet = &appsv1.DaemonSet{}
			obj = m.daemonSet
		default:
			t.Fatalf("%s document %d: unexpected %s %s", manifestFile, i, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", manifestFile, i, head.Kind, err)
		}
		m.kinds = append(m.kinds, head.Kind)
	}
	if m.daemonSet == nil || m.configMap == nil {
		t.Fatalf("%s: want a DaemonSet and a ConfigMap, has %v", manifestFile, m.kinds)
	}
	return m
}

// unitValue is the value of a [Service] directive of the systemd unit.
func unitValue(t *testing.T, key string) string {
	t.Helper()
	for _, d := range parseUnit(t, unitFile) {
		if d.section == "[Service]" && d.key == key {
			return d.value
		}
	}
	t.Fatalf("%s has no %s", unitFile, key)
	return ""
}

// TestDaemonSetMatchesUnit holds the DaemonSet to the systemd unit's
// privileges, setting by setting: the same capabilities and no others, no
// privilege escalation, a read-only system but the data directory, the
// host's processes and network, the same walls and stop timeout.
func TestDaemonSetMatchesUnit(t *testing.T) {
	m := loadManifest(t)
	pod := m.daemonSet.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container and no init containers, have %d and %d", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the container has no securityContext.capabilities")
	}

	// Capabilities: the unit's ambient set, which is also its bounding
	// set, and nothing else.
	ambient := strings.Fields(unitValue(t, "AmbientCapabilities"))
	if bounding := strings.Fields(unitValue(t, "CapabilityBoundingSet")); !slices.Equal(ambient, bounding) {
		t.Fatalf("the unit's ambient %v and bounding %v sets differ: the manifest cannot be both", ambient, bounding)
	}
	var want, added []string
	for _, a := range ambient {
		want = append(want, strings.TrimPrefix(a, "CAP_"))
	}
	for _, a := range sc.Capabilities.Add {
		added = append(added, string(a))
	}
	slices.Sort(want)
	slices.Sort(added)
	if !slices.Equal(added, want) {
		t.Errorf("capabilities.add %v, the unit grants %v", added, want)
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capabilities.drop %v, want [ALL]: the runtime's defaults (CHOWN, DAC_OVERRIDE, SETUID...) are not the unit's", sc.Capabilities.Drop)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged: the unit runs with five capabilities, not all")
	}
	if unitValue(t, "NoNewPrivileges") != "yes" || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false (NoNewPrivileges=yes)")
	}
	if unitValue(t, "ProtectSystem") != "strict" || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true (ProtectSystem=strict)")
	}
	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		t.Errorf("procMount %s: the runtime's masks of /proc stay", *sc.ProcMount)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && pod.SecurityContext != nil {
		seccomp = pod.SecurityContext.SeccompProfile
	}
	if !strings.Contains(unitValue(t, "SystemCallFilter"), "@system-service") || seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %v, want RuntimeDefault (the unit filters system calls)", seccomp)
	}

	// Namespaces: the host's processes and network (the unit sets no
	// ProtectProc=, ProcSubset= or PrivateNetwork=), not its IPC.
	for _, k := range []string{"ProtectProc", "ProcSubset", "PrivateNetwork", "PrivateUsers"} {
		for _, d := range parseUnit(t, unitFile) {
			if d.key == k {
				t.Errorf("the unit sets %s=%s: hostPID and hostNetwork no longer match it", k, d.value)
			}
		}
	}
	if !pod.HostPID || !pod.HostNetwork || pod.HostIPC {
		t.Errorf("hostPID %v hostNetwork %v hostIPC %v, want true true false", pod.HostPID, pod.HostNetwork, pod.HostIPC)
	}
	if pod.HostUsers != nil && !*pod.HostUsers {
		t.Error("hostUsers: false would make the capabilities a user namespace's (PrivateUsers=)")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: the agent never calls the API server")
	}

	// Mounts: every host path read-only but the data directory, and only
	// the paths the agent reads.
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		hp, ok := hostPaths[vm.Name]
		if !ok {
			continue
		}
		mounted[hp] = true
		switch {
		case hp == dataDir:
			if vm.MountPath != dataDir || vm.ReadOnly {
				t.Errorf("the data directory %s is mounted at %s, read-only %v: want writable at the same path", hp, vm.MountPath, vm.ReadOnly)
			}
		case hp == cgroupFS:
			if vm.MountPath != cgroupFS || !vm.ReadOnly {
				t.Errorf("%s mounted at %s, read-only %v: want read-only at the same path", hp, vm.MountPath, vm.ReadOnly)
			}
		default:
			t.Errorf("host path %s mounted: the agent reads only %s and %s from the host's file system", hp, dataDir, cgroupFS)
		}
		if vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
			t.Errorf("%s: mountPropagation %s (PrivateMounts=yes)", hp, *vm.MountPropagation)
		}
	}
	if !mounted[dataDir] || !mounted[cgroupFS] {
		t.Errorf("host paths mounted %v, want %s and %s", mounted, dataDir, cgroupFS)
	}
	if unitValue(t, "StateDirectory") != filepath.Base(dataDir) {
		t.Errorf("the unit's StateDirectory is not %s", dataDir)
	}

	// Walls and timeouts.
	memMax := unitValue(t, "MemoryMax")
	mem, err := strconv.ParseInt(strings.TrimSuffix(memMax, "M"), 10, 64)
	if err != nil || !strings.HasSuffix(memMax, "M") {
		t.Fatalf("MemoryMax=%s: not in M", memMax)
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(*resource.NewQuantity(mem<<20, resource.BinarySI)) != 0 {
		t.Errorf("memory limit %s, the unit's MemoryMax=%s (systemd's M is MiB)", got.String(), memMax)
	}
	quota := unitValue(t, "CPUQuota")
	pct, err := strconv.Atoi(strings.TrimSuffix(quota, "%"))
	if err != nil {
		t.Fatalf("CPUQuota=%s: %v", quota, err)
	}
	if got := c.Resources.Limits[corev1.ResourceCPU]; got.MilliValue() != int64(pct*10) {
		t.Errorf("cpu limit %s, the unit's CPUQuota=%s", got.String(), quota)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s request %s: want one, at most the limit %s", r, req.String(), lim.String())
		}
	}
	stop := strings.TrimSuffix(unitValue(t, "TimeoutStopSec"), "s")
	if pod.TerminationGracePeriodSeconds == nil || strconv.FormatInt(*pod.TerminationGracePeriodSeconds, 10) != stop {
		t.Errorf("terminationGracePeriodSeconds %v, the unit's TimeoutStopSec=%ss", pod.TerminationGracePeriodSeconds, stop)
	}
}

// TestDaemonSetConfig: the container runs the agent with the ConfigMap's
// file, which loads and validates as the agent will, keeps the data where
// the host path is mounted and the API on loopback; the probes ask that
// API.
func TestDaemonSetConfig(t *testing.T) {
	m := loadManifest(t)
	c := m.daemonSet.Spec.Template.Spec.Containers[0]
	args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	if !strings.Contains(args, "agent --config "+configMountDir+"/agent.yaml") {
		t.Errorf("the container runs %q, not the agent with %s/agent.yaml", args, configMountDir)
	}
	var cmMounted bool
	for _, vm := range c.VolumeMounts {
		for _, v := range m.daemonSet.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == m.configMap.Name && vm.MountPath == configMountDir {
				cmMounted = true
			}
		}
	}
	if !cmMounted || m.configMap.Namespace != m.daemonSet.Namespace {
		t.Errorf("ConfigMap %s/%s is not mounted at %s", m.configMap.Namespace, m.configMap.Name, configMountDir)
	}
	text, ok := m.configMap.Data["agent.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no agent.yaml")
	}
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's agent.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the ConfigMap's agent.yaml: %v", err)
	}
	if cfg.DataDir != dataDir {
		t.Errorf("data_dir %s, but the host path is mounted at %s", cfg.DataDir, dataDir)
	}
	host, port, ok := strings.Cut(cfg.Listen, ":")
	if !ok || host != "127.0.0.1" {
		t.Errorf("listen %s: want the node's loopback (hostNetwork), as the unit", cfg.Listen)
	}
	for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet of /healthz", name)
			continue
		}
		if p.HTTPGet.Host != host || p.HTTPGet.Port.String() != port || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s asks %s:%s%s, the agent listens on %s", name, p.HTTPGet.Host, p.HTTPGet.Port.String(), p.HTTPGet.Path, cfg.Listen)
		}
	}
	if p := c.StartupProbe; p != nil {
		start := strings.TrimSuffix(unitValue(t, "TimeoutStartSec"), "s")
		if got := strconv.Itoa(int(p.PeriodSeconds * p.FailureThreshold)); got != start {
			t.Errorf("the startup probe gives up after %s s, the unit's TimeoutStartSec=%ss", got, start)
		}
	}
}

// TestDockerfileBuild runs the Dockerfile's build command as written
// (Docker is not needed: the command is plain go build) and checks that
// the binary is static, as the distroless/static or scratch stage that
// copies it needs, and that the image runs what the DaemonSet expects.
func TestDockerfileBuild(t *testing.T) {
	text := string(mustRead(t, dockerfile))
	var froms, runs []string
	var copyFrom, entry string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch f := strings.Fields(line); {
		case len(f) == 0 || strings.HasPrefix(line, "#"):
		case f[0] == "FROM":
			froms = append(froms, f[1])
		case f[0] == "RUN":
			runs = append(runs, strings.TrimPrefix(line, "RUN "))
		case f[0] == "COPY" && strings.HasPrefix(f[1], "--from="):
			copyFrom = strings.Join(f[2:], " ")
		case f[0] == "ENTRYPOINT":
			entry = line
		}
	}
	if len(froms) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(froms))
	}
	if last := froms[1]; !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		t.Errorf("the image is FROM %s: want distroless/static or scratch", last)
	}
	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	m := regexp.MustCompile(`^((?:[A-Z_]+=\S+ )*)go build (.*)-o (\S+) (\./\S+)$`).FindStringSubmatch(build)
	if m == nil {
		t.Fatalf("no build command of the form [ENV=...] go build ... -o OUT ./PKG: %q", build)
	}
	env, flags, out, pkg := strings.Fields(m[1]), strings.Fields(m[2]), m[3], m[4]
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the build sets %v: without CGO_ENABLED=0 the binary may need libc", env)
	}
	if src, _, _ := strings.Cut(copyFrom, " "); src != out {
		t.Errorf("the image copies %q, the build writes %s", copyFrom, out)
	}
	if _, dst, _ := strings.Cut(copyFrom, " "); !strings.Contains(entry, `"`+dst+`"`) {
		t.Errorf("%s does not run the copied %s", entry, dst)
	}

	bin := filepath.Join(t.TempDir(), "perfhound")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, pkg)...)
	cmd.Dir = ".." // the Dockerfile builds from the repository's root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names an interpreter (dynamically linked): distroless/static has no libc")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
	version, err := exec.Command(bin, "agent", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(version, []byte("--config")) {
		t.Errorf("%s agent --help: %v\n%s", bin, err, version)
	}
}
