package identity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/perfhound/perfhound/agent/collect"
)

// The labels of an Identity, after Pyroscope's conventions.
const (
	LabelService   = "service_name"
	LabelVersion   = "version"
	LabelUnit      = "systemd_unit"
	LabelContainer = "container_id"
	LabelExe       = "exe"
	LabelBuildID   = "build_id"
)

const (
	// UnknownVersion is the version of a process whose executable's
	// build ID cannot be read (no permission, no note, gone).
	UnknownVersion = "unknown"
	// UnknownService names a process of which nothing could be read
	// (not even its name).
	UnknownService = "unknown"
	// KernelService is the service of every kernel thread unless
	// Options.KernelThreadsByName.
	KernelService = "kernel"
	// DefaultMaxProcesses bounds the per-PID cache: some 5 MiB (see the
	// package doc); at 1,000 process starts a second, every one resolved,
	// the last 8 s of them.
	DefaultMaxProcesses = 8192
	// DefaultMaxExecutables bounds the build-ID cache (one short string
	// per executable file).
	DefaultMaxExecutables = 1024
	// maxCmdline bounds what is read of a command line to match rules.
	maxCmdline = 64 << 10
	// pfKthread is PF_KTHREAD in /proc/PID/stat's flags (field 9).
	pfKthread = 0x00200000
)

// ErrNoProcess says the PID resolved names no process (it exited).
var ErrNoProcess = errors.New("no such process")

// Identity is who a process is: its service and version, and the labels
// its samples carry.
type Identity struct {
	Service string
	Version string
	// Labels: service_name and version always; systemd_unit,
	// container_id, exe (base name) and build_id where known. Never the
	// command line or the environment, which may hold secrets. The map
	// is the caller's own copy.
	Labels map[string]string
}

// Options configure a Resolver; the zero value reads the real /proc.
type Options struct {
	// Env says where /proc (and /sys, for the kernel's build ID) are.
	Env collect.Env
	// Rules are the configured services, first match wins. New compiles
	// them.
	Rules []Rule
	// KernelThreadsByName names each kernel thread's service after its
	// name up to the first "/" (kworker, ksoftirqd, rcu_preempt) instead
	// of KernelService: per-CPU threads fold into one service each.
	KernelThreadsByName bool
	// MaxProcesses bounds the per-PID cache (default
	// DefaultMaxProcesses); MaxExecutables the build-ID cache (default
	// DefaultMaxExecutables). The least recently resolved entry goes.
	MaxProcesses   int
	MaxExecutables int
}

// Stats count what the caches did, for the agent's /metrics.
type Stats struct {
	Processes   int    // entries in the per-PID cache
	Executables int    // entries in the build-ID cache
	Hits        uint64 // Resolve answered from the per-PID cache
	Misses      uint64 // Resolve read the process
	Evicted     uint64 // per-PID entries dropped by the bound
	Forgotten   uint64 // per-PID entries dropped by Forget
}

// Resolver tells the identity of a PID, caching it per process
// incarnation. Safe for concurrent use.
type Resolver struct {
	opts      Options
	proc, sys string

	mu    sync.Mutex
	rules []Rule
	gen   uint64 // bumped by SetRules: entries resolved before are not kept
	procs *lru[int, procEntry]
	exes  *lru[fileKey, string]
	stats Stats

	kernelOnce sync.Once
	kernelID   string
}

// procEntry is one cached process incarnation: the same PID with another
// start time, or whose executable changed (execve keeps PID and start
// time), is another process.
type procEntry struct {
	start uint64
	// ino is /proc/PID's inode when the entry was made: procfs makes a
	// new one for every process that takes the PID (its dentries are
	// dropped when the process exits), so the same inode is the same
	// process without reading its stat. A changed inode (procfs may also
	// drop and remake the dentry of a live process) only sends Resolve
	// to the stat.
	ino uint64
	exe fileKey
	id  Identity
}

// fileKey names one version of an executable file: a rebuild at the same
// path changes its inode, size or mtime.
type fileKey struct {
	dev, ino    uint64
	size, mtime int64
}

// New makes a Resolver, compiling opts.Rules; a bad rule is an error
// naming it by its position and service.
func New(opts Options) (*Resolver, error) {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	if opts.MaxExecutables <= 0 {
		opts.MaxExecutables = DefaultMaxExecutables
	}
	r := &Resolver{
		opts:  opts,
		proc:  opts.Env.ProcDir(),
		sys:   opts.Env.SysFS,
		procs: newLRU[int, procEntry](opts.MaxProcesses),
		exes:  newLRU[fileKey, string](opts.MaxExecutables),
	}
	if r.sys == "" {
		r.sys = "/sys"
	}
	if err := r.SetRules(opts.Rules); err != nil {
		return nil, err
	}
	return r, nil
}

// SetRules replaces the rules (a configuration reload) and forgets every
// process resolved under the old ones; on error nothing changes.
func (r *Resolver) SetRules(rules []Rule) error {
	rules = append([]Rule(nil), rules...)
	for i := range rules {
		if err := rules[i].Compile(); err != nil {
			return fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = rules
	r.gen++
	r.procs.clear()
	return nil
}

// Forget drops the cached identities of the PIDs alive reports dead
// (e.g. those absent from the window's process scan) and says how many.
// The per-PID bound holds without it; Forget lets memory shrink back
// after a burst of short-lived processes.
func (r *Resolver) Forget(alive func(pid int) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.procs.removeIf(func(pid int) bool { return !alive(pid) })
	r.stats.Forgotten += uint64(n)
	return n
}

// Stats returns the caches' counts.
func (r *Resolver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Processes, s.Executables = r.procs.len(), r.exes.len()
	return s
}

// Resolve returns pid's identity. A process that is gone keeps the
// identity it was last resolved to, while the cache holds it: the
// window in which a process exits still has its samples, and they belong
// to its service and version, not to an unknown one. A process gone
// unresolved is an error wrapping ErrNoProcess; what cannot be read of a live process (its
// executable, without the privilege to) only makes the identity less
// precise (see the package doc's order).
func (r *Resolver) Resolve(pid int) (Identity, error) {
	dir := filepath.Join(r.proc, strconv.Itoa(pid))
	// The cached incarnation, told by /proc/PID's inode: a stat of the
	// directory costs a tenth of reading the stat file, which the
	// kernel composes field by field, every window for every process.
	// A kernel thread has no exe: its key is zero, cached and now.
	ino := statKey(dir).ino
	exe := statKey(filepath.Join(dir, "exe"))
	r.mu.Lock()
	if e, ok := r.procs.get(pid); ok && ino != 0 && e.ino == ino && e.exe == exe {
		r.stats.Hits++
		r.mu.Unlock()
		return e.id.clone(), nil
	}
	r.mu.Unlock()
	st, err := readStat(filepath.Join(dir, "stat"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			r.mu.Lock()
			e, ok := r.procs.get(pid)
			r.mu.Unlock()
			if ok {
				return e.id.clone(), nil
			}
			return Identity{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
		}
		return Identity{}, fmt.Errorf("reading pid %d: %w", pid, err)
	}
	r.mu.Lock()
	if e, ok := r.procs.get(pid); ok && e.start == st.start && e.exe == exe {
		r.stats.Hits++
		if e.ino != ino { // procfs made /proc/PID anew: the next look takes the short way
			e.ino = ino
			r.procs.put(pid, e)
		}
		r.mu.Unlock()
		return e.id.clone(), nil
	}
	r.stats.Misses++
	rules, gen := r.rules, r.gen
	r.mu.Unlock()

	var id Identity
	if st.kthread {
		id = r.kernelIdentity(st.comm)
	} else {
		id = r.processIdentity(dir, st.comm, exe, rules)
	}
	r.mu.Lock()
	if gen == r.gen {
		r.stats.Evicted += uint64(r.procs.put(pid, procEntry{start: st.start, ino: ino, exe: exe, id: id}))
	}
	r.mu.Unlock()
	return id.clone(), nil
}

func (id Identity) clone() Identity {
	id.Labels = maps.Clone(id.Labels)
	return id
}

// processIdentity reads a user process's facts and decides its identity.
func (r *Resolver) processIdentity(dir, comm string, exe fileKey, rules []Rule) Identity {
	var f facts
	containerWins := false
	if p, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		f.exe = strings.TrimSuffix(p, " (deleted)")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		cg := parseCgroup(string(b))
		f.cgroup, f.unit, f.container = cg.Path, cg.Unit, cg.ContainerID
		containerWins = cg.ContainerWins
	}
	f.cmdline = sync.OnceValue(func() string { return readCmdline(filepath.Join(dir, "cmdline")) })

	buildID := ""
	if exe != (fileKey{}) {
		buildID = r.buildID(filepath.Join(dir, "exe"), exe)
	}
	id := Identity{Version: buildID}
	for i := range rules {
		if rules[i].matches(&f) {
			id.Service = rules[i].Service
			if rules[i].Version != "" {
				id.Version = rules[i].Version
			}
			break
		}
	}
	switch {
	case id.Service != "":
	case f.unit != "" && !containerWins:
		id.Service = strings.TrimSuffix(strings.TrimSuffix(f.unit, ".service"), ".scope")
	case f.container != "":
		id.Service = shortID(f.container)
	case f.exe != "":
		id.Service = path.Base(f.exe)
	case comm != "":
		id.Service = comm
	default:
		id.Service = UnknownService
	}
	if id.Version == "" {
		id.Version = UnknownVersion
	}
	id.Labels = map[string]string{LabelService: id.Service, LabelVersion: id.Version}
	if f.unit != "" {
		id.Labels[LabelUnit] = f.unit
	}
	if f.container != "" {
		id.Labels[LabelContainer] = f.container
	}
	if f.exe != "" {
		id.Labels[LabelExe] = path.Base(f.exe)
	}
	if buildID != "" {
		id.Labels[LabelBuildID] = buildID
	}
	return id
}

// buildID returns the build ID of the executable at exePath (a
// /proc/PID/exe link) whose stat is key, from the cache or the file; ""
// when it has none or cannot be read (cached too: the same file will not
// read better next time).
//
// /proc/PID/exe opens the very file the process runs, even when its path
// was replaced or deleted since, or lies in another mount namespace (a
// container's): /proc/PID/root/<path> would need the same permission
// (ptrace read access) and could name a newer file.
func (r *Resolver) buildID(exePath string, key fileKey) string {
	r.mu.Lock()
	id, ok := r.exes.get(key)
	r.mu.Unlock()
	if ok {
		return id
	}
	if f, err := os.Open(exePath); err == nil {
		id, _ = readBuildID(f)
		f.Close()
	} else if errors.Is(err, fs.ErrPermission) {
		return "" // another process of the same file may be readable
	}
	r.mu.Lock()
	r.exes.put(key, id)
	r.mu.Unlock()
	return id
}

// kernelIdentity is a kernel thread's: service KernelService (or the
// thread's name), version the running kernel's GNU build ID.
func (r *Resolver) kernelIdentity(comm string) Identity {
	r.kernelOnce.Do(func() {
		if b, err := os.ReadFile(filepath.Join(r.sys, "kernel", "notes")); err == nil {
			_, r.kernelID = parseNotes(b, binary.NativeEndian)
		}
	})
	id := Identity{Service: KernelService, Version: r.kernelID}
	if r.opts.KernelThreadsByName && comm != "" {
		id.Service, _, _ = strings.Cut(comm, "/")
	}
	if id.Version == "" {
		id.Version = UnknownVersion
	}
	id.Labels = map[string]string{LabelService: id.Service, LabelVersion: id.Version}
	if r.kernelID != "" {
		id.Labels[LabelBuildID] = r.kernelID
	}
	return id
}

// statKey stats the file at p (following links: /proc/PID/exe is the
// executable's inode); the zero key when it cannot. One stat(2), no
// allocation: Resolve's cache check runs it for every PID every window.
func statKey(p string) fileKey {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return fileKey{}
	}
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
}

// readCmdline reads /proc/PID/cmdline (up to maxCmdline bytes) with its
// NUL separators as spaces.
func readCmdline(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxCmdline))
	b = bytes.TrimRight(b, "\x00")
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// stat is what Resolve needs of /proc/PID/stat.
type stat struct {
	comm    string
	kthread bool
	start   uint64 // field 22: clock ticks after boot the process started
}

// readStat reads /proc/PID/stat with open, read and close alone (os.Open
// would also register the file with the poller: two more system calls,
// a third of a cached Resolve's time).
func readStat(p string) (stat, error) {
	var buf [1024]byte // a stat line is under 400 bytes; comm is 16 at most
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return stat{}, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Close(fd)
			return stat{}, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	syscall.Close(fd)
	st, err := parseStat(string(buf[:n]))
	if err != nil {
		return stat{}, fmt.Errorf("%s: %w", p, err)
	}
	return st, nil
}

// parseStat reads the comm (field 2, in parentheses, which may itself
// hold ")" and spaces: it ends at the last ")"), flags (field 9) and
// starttime (field 22).
func parseStat(s string) (stat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, errors.New("no command name in parentheses")
	}
	// Fields 3 on, separated by single spaces; only 9 and 22 are kept
	// (no slice of all 50: this runs for every PID every window).
	var flags, start string
	field, rest := 3, strings.TrimSpace(s[end+1:])
	for rest != "" && field <= 22 {
		f, after, _ := strings.Cut(rest, " ")
		switch field {
		case 9:
			flags = f
		case 22:
			start = f
		}
		field, rest = field+1, after
	}
	if field <= 22 {
		return stat{}, fmt.Errorf("%d fields, want at least 22", field-1)
	}
	fl, err := strconv.ParseUint(flags, 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("flags: %w", err)
	}
	st, err := strconv.ParseUint(start, 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("starttime: %w", err)
	}
	return stat{comm: s[open+1 : end], kthread: fl&pfKthread != 0, start: st}, nil
}
