package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// dockerfileBuild is the Dockerfile's build as written: its go build
// command, the output it copies into the image, and what the image runs.
type dockerfileBuild struct {
	env, flags      []string
	out, pkg        string
	stages          []string
	copyFrom, entry string
}

func parseDockerfile(t *testing.T) dockerfileBuild {
	t.Helper()
	var d dockerfileBuild
	var runs []string
	sc := bufio.NewScanner(strings.NewReader(string(mustRead(t, dockerfile))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch f := strings.Fields(line); {
		case len(f) == 0 || strings.HasPrefix(line, "#"):
		case f[0] == "FROM":
			d.stages = append(d.stages, f[1])
		case f[0] == "RUN":
			runs = append(runs, strings.TrimPrefix(line, "RUN "))
		case f[0] == "COPY" && strings.HasPrefix(f[1], "--from="):
			d.copyFrom = strings.Join(f[2:], " ")
		case f[0] == "ENTRYPOINT":
			d.entry = line
		}
	}
	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	m := regexp.MustCompile(`^((?:[A-Z_]+=\S+ )*)go build (.*)-o (\S+) (\./\S+)$`).FindStringSubmatch(build)
	if m == nil {
		t.Fatalf("%s: no build command of the form [ENV=...] go build ... -o OUT ./PKG: %q", dockerfile, build)
	}
	d.env, d.flags, d.out, d.pkg = strings.Fields(m[1]), strings.Fields(m[2]), m[3], m[4]
	return d
}

// build runs the Dockerfile's go build here (Docker is not needed: the
// command is plain go build) from the repository's root, as the
// Dockerfile does, and returns the binary.
func (d dockerfileBuild) build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "perfhound")
	cmd := exec.Command("go", append(append([]string{"build"}, d.flags...), "-o", bin, d.pkg)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), d.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return bin
}

// TestDockerfileBuild: the Dockerfile's build command works as written,
// and the binary is static, as the distroless/static or scratch stage
// that copies it needs, and the image runs what the DaemonSet expects.
func TestDockerfileBuild(t *testing.T) {
	d := parseDockerfile(t)
	if len(d.stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(d.stages))
	}
	if last := d.stages[1]; !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		t.Errorf("the image is FROM %s: want distroless/static or scratch", last)
	}
	if !slices.Contains(d.env, "CGO_ENABLED=0") {
		t.Errorf("the build sets %v: without CGO_ENABLED=0 the binary may need libc", d.env)
	}
	if src, _, _ := strings.Cut(d.copyFrom, " "); src != d.out {
		t.Errorf("the image copies %q, the build writes %s", d.copyFrom, d.out)
	}
	if _, dst, _ := strings.Cut(d.copyFrom, " "); !strings.Contains(d.entry, `"`+dst+`"`) {
		t.Errorf("%s does not run the copied %s", d.entry, dst)
	}
	bin := d.build(t)
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
	help, err := exec.Command(bin, "agent", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(help, []byte("--config")) {
		t.Errorf("%s agent --help: %v\n%s", bin, err, help)
	}
}

// TestDaemonSetPrivilegesSuffice runs the image's binary as the DaemonSet
// runs it, without a cluster: user 0 holding only the manifest's
// capabilities (setpriv's bounding set, as a runtime sets it), no new
// privileges, the host's processes and network. Every eBPF collector
// must load (perfhound_agent_missing_signals_total has no ebpf signal
// but the symbols of processes that exited); with CAP_BPF taken away they
// must not, which shows that the check can tell.
func TestDaemonSetPrivilegesSuffice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the agent as user 0 with the manifest's capabilities")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	m := loadManifest(t)
	var caps []string
	for _, c := range m.daemonSet.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add {
		caps = append(caps, strings.ToLower(string(c)))
	}
	bin := parseDockerfile(t).build(t)
	if missing := missingEBPF(t, bin, caps); len(missing) > 0 {
		t.Errorf("with the manifest's capabilities %v, not collected: %v", caps, missing)
	}
	without := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "bpf" })
	if missing := missingEBPF(t, bin, without); !slices.Contains(missing, "ebpf.oncpu") {
		t.Errorf("without CAP_BPF the agent still collected on-CPU stacks (missing only %v): the check cannot tell", missing)
	}
}

var (
	listenRE  = regexp.MustCompile(`listen=http://(127\.0\.0\.1:\d+)/`)
	windowsRE = regexp.MustCompile(`(?m)^perfhound_agent_windows_total\{[^}]*\} (\d+)`)
	missingRE = regexp.MustCompile(`(?m)^perfhound_agent_missing_signals_total\{signal="(ebpf\.[a-z_]+)"\} (\d+)`)
)

// missingEBPF runs the agent as user 0 with only caps, until it has
// stored a window (its missing signals are counted before it is), and
// returns the eBPF signals it could not collect
// (but ebpf.symbols: processes that exit before they are read).
func missingEBPF(t *testing.T, bin string, caps []string) []string {
	t.Helper()
	var bounding strings.Builder
	bounding.WriteString("-all")
	for _, c := range caps {
		bounding.WriteString(",+" + c)
	}
	cmd := exec.Command("setpriv", "--reuid=0", "--regid=0", "--clear-groups", "--inh-caps=-all", "--ambient-caps=-all",
		"--bounding-set="+bounding.String(), "--no-new-privs", "--",
		bin, "agent", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--window", "1s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	var base string
	select {
	case base = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not say where it listens within 60 s")
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		text := getMetrics(t, "http://"+base+"/metrics")
		windows := 0
		for _, m := range windowsRE.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.Atoi(m[1])
			windows += n
		}
		if windows >= 1 {
			var missing []string
			for _, m := range missingRE.FindAllStringSubmatch(text, -1) {
				if m[1] != "ebpf.symbols" && m[2] != "0" {
					missing = append(missing, m[1])
				}
			}
			return missing
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent stored no window in 3 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
