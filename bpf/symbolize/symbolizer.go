//go:build linux

package symbolize

import (
	"container/list"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options configures a Symbolizer; the zero value works.
type Options struct {
	ProcFS       string // default "/proc"; tests may point elsewhere
	KallsymsPath string // default ProcFS+"/kallsyms"

	// The object cache is an LRU bounded by count and by approximate heap
	// (Stats.ObjectBytes): defaults 256 and 32 MiB. The object used last
	// always stays. A file whose .symtab would take more than half of
	// MaxObjectBytes to read is symbolized from .dynsym (and .gopclntab)
	// instead, and counted in Stats.ObjectsReduced.
	MaxObjects     int
	MaxObjectBytes int64

	// MaxProcesses bounds the process snapshots; default 4096. Past it,
	// the snapshots of processes that are gone go first, oldest first.
	MaxProcesses int
}

const (
	defaultMaxObjects     = 256
	defaultMaxObjectBytes = 32 << 20
	defaultMaxProcesses   = 4096

	// A frame outside every mapping of a live process re-reads its maps
	// (it may have called dlopen) if the snapshot is older than this, at
	// most once per Builder and process.
	mapsRefreshAge = time.Second
	// kallsyms is read again after a miss (a module or BPF program loaded)
	// or a failure, at most this often.
	kallsymsRetry = 10 * time.Second
)

// UnknownFunction names the one location that stands for the user stack of
// a process that exited before it was watched.
const UnknownFunction = "[unknown]"

// AnonMapping is the pprof mapping file of executable memory that no file
// backs (JIT code), as perf names it.
const AnonMapping = "//anon"

var (
	// ErrProcessGone is returned by Watch when the process does not exist
	// (or is a zombie).
	ErrProcessGone = errors.New("process is gone")
	// ErrClosed is returned by Watch after Close.
	ErrClosed = errors.New("symbolizer is closed")
)

// Symbolizer resolves sampled instruction addresses of any process on the
// host and of the kernel. It is safe for concurrent use; the Builders it
// makes are not.
type Symbolizer struct {
	opts Options

	mu           sync.Mutex
	closed       bool
	procs        map[int]*process
	order        *list.List // of *process, least recently watched first
	cache        *objCache
	kernel       *kernelSyms
	kernelErr    error
	kernelLoaded time.Time // last attempt
	st           Stats     // counters guarded by mu; the rest are below

	samples, unknownPID                   atomic.Uint64
	userFrames, unknownUser               atomic.Uint64
	kernelFrames, unknownKernel           atomic.Uint64
	watches, lazyWatches, goneBeforeWatch atomic.Uint64
	openErrors, reloads                   atomic.Uint64
}

// process is the snapshot of one process's executable mappings. It is
// immutable once stored; Watch replaces it.
type process struct {
	pid       int
	startTime uint64
	ino       uint64        // of /proc/PID when the snapshot was taken (procInode); 0 unknown
	maps      []procMapping // sorted by start
	read      time.Time
	elem      *list.Element
}

// find returns the mapping that holds addr, or nil.
func (p *process) find(addr uint64) *procMapping {
	i, _ := slices.BinarySearchFunc(p.maps, addr, func(m procMapping, a uint64) int {
		switch {
		case m.end <= a:
			return -1
		case m.start > a:
			return 1
		}
		return 0
	})
	if i < len(p.maps) && p.maps[i].start <= addr && addr < p.maps[i].end {
		return &p.maps[i]
	}
	return nil
}

// Stats are counters since New, and the sizes of the caches now.
type Stats struct {
	Processes        int    // process snapshots held
	Watches          uint64 // successful Watch calls, refreshes included
	LazyWatches      uint64 // of which a Builder started, on a PID it had not been told of
	GoneBeforeWatch  uint64 // PIDs a Builder met that were never watched and had exited
	ProcessEvictions uint64 // snapshots dropped to stay under MaxProcesses

	Objects         int    // parsed objects cached
	ObjectBytes     int64  // their approximate heap
	ObjectHits      uint64 // mapped files found in the cache (by file identity or build ID)
	ObjectMisses    uint64 // mapped files parsed
	ObjectEvictions uint64 // objects dropped to stay under MaxObjects and MaxObjectBytes
	ObjectReloads   uint64 // evicted objects parsed again because a frame needed them
	ObjectErrors    uint64 // files that are not ELF or could not be parsed
	ObjectsReduced  uint64 // objects whose .symtab was over budget and skipped
	OpenErrors      uint64 // mapped files that could not be opened or read
	LastObjectError error  // the latest of those, or of the warnings, naming the file

	KernelSymbols int   // text symbols from kallsyms
	KernelBytes   int64 // the heap their table holds
	KernelError   error // the last failure to read kallsyms (see ErrKallsymsHidden); nil after a success

	Samples             uint64 // samples added to Builders
	UnknownPIDSamples   uint64 // of which the user stack was "[unknown]": process gone before watch
	UserFrames          uint64
	UnknownUserFrames   uint64 // frames without a function: no mapping, object or symbol, or an "[unknown]" stack's
	KernelFrames        uint64
	UnknownKernelFrames uint64
}

// New returns a Symbolizer. Nothing is read until Watch, LoadKernel or the
// first sample.
func New(opts Options) *Symbolizer {
	if opts.ProcFS == "" {
		opts.ProcFS = "/proc"
	}
	if opts.KallsymsPath == "" {
		opts.KallsymsPath = filepath.Join(opts.ProcFS, "kallsyms")
	}
	if opts.MaxObjects <= 0 {
		opts.MaxObjects = defaultMaxObjects
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = defaultMaxObjectBytes
	}
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = defaultMaxProcesses
	}
	return &Symbolizer{
		opts:  opts,
		procs: map[int]*process{},
		order: list.New(),
		cache: newObjCache(opts.MaxObjects, opts.MaxObjectBytes),
	}
}

// Watch snapshots the executable mappings of process pid and identifies
// (and on a cache miss parses) the files behind them, so that its stacks
// resolve even after it exits. Call it again after the process execs or
// loads libraries: it replaces the snapshot. It returns an error wrapping
// ErrProcessGone if the process does not exist, and ErrClosed after Close.
// A mapped file that cannot be read is counted in Stats and leaves its
// frames unsymbolized; it does not fail the call.
func (s *Symbolizer) Watch(pid int) error {
	_, err := s.watch(pid)
	return err
}

func (s *Symbolizer) watch(pid int) (*process, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	state, start, err := readStat(s.opts.ProcFS, pid)
	if err == nil && (state == 'Z' || state == 'X') {
		err = ErrProcessGone
	}
	ino := procInode(s.opts.ProcFS, pid) // the process's if the second readStat agrees
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			err = ErrProcessGone
		}
		return nil, fmt.Errorf("watching process %d: %w", pid, err)
	}
	maps, err := readMaps(filepath.Join(s.opts.ProcFS, strconv.Itoa(pid), "maps"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			err = ErrProcessGone
		}
		return nil, fmt.Errorf("watching process %d: reading maps: %w", pid, err)
	}
	// A process exiting while its maps are read gives an empty file and no
	// error; one gone and replaced under the same PID, another's maps.
	// Either would replace a good snapshot with a wrong one.
	state, start2, err := readStat(s.opts.ProcFS, pid)
	if err != nil || state == 'Z' || state == 'X' || start2 != start || len(maps) == 0 && !kernelThread(s.opts.ProcFS, pid) {
		return nil, fmt.Errorf("watching process %d: %w", pid, ErrProcessGone)
	}
	slices.SortFunc(maps, func(a, b procMapping) int {
		if a.start < b.start {
			return -1
		}
		if a.start > b.start {
			return 1
		}
		return 0
	})
	known := s.identified(pid, start)
	for i := range maps {
		if k, ok := known[fileOf(maps[i])]; ok && s.unchanged(pid, k) {
			maps[i].key, maps[i].buildID, maps[i].hasSyms, maps[i].hasGo = k.key, k.buildID, k.hasSyms, k.hasGo
			maps[i].size, maps[i].mtime = k.size, k.mtime
			continue
		}
		s.identify(pid, &maps[i])
	}
	p := &process{pid: pid, startTime: start, ino: ino, maps: maps, read: time.Now()}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if old := s.procs[pid]; old != nil {
		s.order.Remove(old.elem)
	}
	p.elem = s.order.PushBack(p)
	s.procs[pid] = p
	s.watches.Add(1)
	s.evictProcessesLocked()
	return p, nil
}

// mappedFile is what makes two mappings of one process the same file
// mapped: a new snapshot of a process (after exec, as its loader maps
// libraries, after a dlopen) finds most of its files in the one before.
type mappedFile struct {
	devMajor, devMinor uint32
	inode              uint64
	path               string
	deleted            bool
}

func fileOf(m procMapping) mappedFile {
	return mappedFile{m.devMajor, m.devMinor, m.inode, m.path, m.deleted}
}

// identified are the mappings of pid's current snapshot that were
// identified, by file, when the snapshot is of the same process (started
// at start): a new snapshot takes their objects without opening their
// files again. That is most of the cost of the snapshots taken after each
// exec while the loader works.
func (s *Symbolizer) identified(pid int, start uint64) map[mappedFile]procMapping {
	s.mu.Lock()
	old := s.procs[pid]
	s.mu.Unlock()
	if old == nil || old.startTime != start {
		return nil
	}
	out := make(map[mappedFile]procMapping, len(old.maps))
	for _, m := range old.maps {
		if m.key != "" {
			out[fileOf(m)] = m
		}
	}
	return out
}

// unchanged tells whether the file of an identified mapping m is still
// the one identified, by one stat(2) as the process sees it (/proc/PID/
// root): the same device, inode, size and modification time. The vDSO is
// the process's own; a deleted file, or one that does not stat, is
// identified again.
func (s *Symbolizer) unchanged(pid int, m procMapping) bool {
	if m.path == VDSOMapping {
		return true
	}
	if m.deleted || m.mtime == 0 {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.opts.ProcFS, strconv.Itoa(pid), "root", m.path), &st); err != nil {
		return false
	}
	major, minor := devOf(st.Dev)
	return major == m.devMajor && minor == m.devMinor && st.Ino == m.inode && st.Size == m.size && st.Mtim.Nano() == m.mtime
}

// evictProcessesLocked brings the snapshots under MaxProcesses, dropping a
// sixteenth more so that the scan is rare: gone processes first, oldest
// watched first, then the oldest watched.
func (s *Symbolizer) evictProcessesLocked() {
	if len(s.procs) <= s.opts.MaxProcesses {
		return
	}
	target := s.opts.MaxProcesses - s.opts.MaxProcesses/16
	drop := func(p *process) {
		s.order.Remove(p.elem)
		delete(s.procs, p.pid)
		s.st.ProcessEvictions++
	}
	for e := s.order.Front(); e != nil && len(s.procs) > target; {
		next := e.Next()
		if p := e.Value.(*process); !s.alive(p) {
			drop(p)
		}
		e = next
	}
	for len(s.procs) > target {
		drop(s.order.Front().Value.(*process))
	}
}

// alive tells whether the process of snapshot p still runs.
func (s *Symbolizer) alive(p *process) bool {
	state, start, err := readStat(s.opts.ProcFS, p.pid)
	return err == nil && start == p.startTime && state != 'Z' && state != 'X'
}

// Forget drops the snapshot of pid; its objects stay cached.
func (s *Symbolizer) Forget(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[pid]; p != nil {
		s.order.Remove(p.elem)
		delete(s.procs, pid)
	}
}

// Close releases the cached objects and snapshots. Builders still resolve
// nothing afterwards, and Watch returns ErrClosed.
func (s *Symbolizer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cache.clear()
	s.procs = map[int]*process{}
	s.order.Init()
	s.kernel = nil
	return nil
}

// Stats returns the counters and cache sizes.
func (s *Symbolizer) Stats() Stats {
	s.mu.Lock()
	st := s.st
	st.Processes = len(s.procs)
	st.Objects = s.cache.ll.Len()
	st.ObjectBytes = s.cache.bytes
	st.ObjectHits, st.ObjectMisses, st.ObjectEvictions = s.cache.hits, s.cache.misses, s.cache.evictions
	if s.kernel != nil {
		st.KernelSymbols = s.kernel.tab.len()
		st.KernelBytes = s.kernel.tab.bytes()
	}
	st.KernelError = s.kernelErr
	s.mu.Unlock()
	st.Watches = s.watches.Load()
	st.LazyWatches = s.lazyWatches.Load()
	st.GoneBeforeWatch = s.goneBeforeWatch.Load()
	st.OpenErrors = s.openErrors.Load()
	st.ObjectReloads = s.reloads.Load()
	st.Samples = s.samples.Load()
	st.UnknownPIDSamples = s.unknownPID.Load()
	st.UserFrames, st.UnknownUserFrames = s.userFrames.Load(), s.unknownUser.Load()
	st.KernelFrames, st.UnknownKernelFrames = s.kernelFrames.Load(), s.unknownKernel.Load()
	return st
}

// LoadKernel reads kallsyms now (it is otherwise read at the first kernel
// frame). The error wraps ErrKallsymsHidden when the addresses are hidden.
func (s *Symbolizer) LoadKernel() error {
	s.mu.Lock()
	s.kernelLoaded = time.Now()
	s.mu.Unlock()
	return s.loadKernel()
}

func (s *Symbolizer) loadKernel() error {
	k, err := loadKallsyms(s.opts.KallsymsPath)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.kernelErr = err
		return err
	}
	if !s.closed {
		s.kernel, s.kernelErr = k, nil
	}
	return nil
}

// kernelSymbols returns the kernel table, loading it on first use, and
// again when stale is set (a frame missed) and the last attempt is old.
func (s *Symbolizer) kernelSymbols(stale bool) *kernelSyms {
	s.mu.Lock()
	k := s.kernel
	due := (k == nil || stale) && !s.closed && (s.kernelLoaded.IsZero() || time.Since(s.kernelLoaded) > kallsymsRetry)
	if due {
		s.kernelLoaded = time.Now()
	}
	s.mu.Unlock()
	if !due {
		return k
	}
	_ = s.loadKernel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kernel
}

// identify finds the object behind mapping m of process pid and fills in
// m's key, build ID and capabilities.
func (s *Symbolizer) identify(pid int, m *procMapping) {
	var o *object
	var err error
	switch {
	case m.path == VDSOMapping:
		o, err = s.loadVDSO(pid, m, "")
	case strings.HasPrefix(m.path, "/") && m.inode != 0:
		var f *os.File
		if f, err = s.openMapped(pid, m); err == nil {
			if st, serr := fstat(f); serr == nil {
				m.size, m.mtime = st.Size, st.Mtim.Nano()
			}
			o, err = s.loadFile(f, "")
			f.Close()
		}
	default:
		return
	}
	if err != nil {
		s.openErrors.Add(1)
		s.mu.Lock()
		s.st.LastObjectError = err
		s.mu.Unlock()
		return
	}
	m.key, m.buildID = o.key, o.buildID
	m.hasSyms, m.hasGo = o.syms.len() > 0, o.lines != nil
}

// openMapped opens the file behind m as process pid sees it: through
// /proc/PID/root if that reaches the same inode, else through
// /proc/PID/map_files, which reaches the mapped file even when it was
// deleted or replaced.
func (s *Symbolizer) openMapped(pid int, m *procMapping) (*os.File, error) {
	dir := filepath.Join(s.opts.ProcFS, strconv.Itoa(pid))
	if !m.deleted {
		if f, err := os.Open(filepath.Join(dir, "root", m.path)); err == nil {
			if st, err := fstat(f); err == nil {
				if major, minor := devOf(st.Dev); major == m.devMajor && minor == m.devMinor && st.Ino == m.inode {
					return f, nil
				}
			}
			f.Close()
		}
	}
	f, err := os.Open(filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", m.start, m.end)))
	if err != nil {
		return nil, fmt.Errorf("opening %s of process %d: %w", m.path, pid, err)
	}
	return f, nil
}

func fstat(f *os.File) (*syscall.Stat_t, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("stat %s: no Stat_t", f.Name())
	}
	return st, nil
}

// errWrongObject is returned when a file reopened for an evicted object
// turns out to be another file.
var errWrongObject = errors.New("file is not the object that was mapped")

// loadFile returns the object of an open file from the cache, or parses it.
// If want is not "", the file must be the object cached under that key.
func (s *Symbolizer) loadFile(f *os.File, want string) (*object, error) {
	st, err := fstat(f)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%d:%d:%d:%d", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
	s.mu.Lock()
	o := s.cache.getAlias(id)
	if o != nil {
		s.cache.hits++
	}
	s.mu.Unlock()
	if o != nil {
		if want != "" && o.key != want {
			return nil, fmt.Errorf("%s: %w", f.Name(), errWrongObject)
		}
		return o, nil
	}

	ef, err := elf.NewFile(f)
	if err != nil {
		o = &object{key: "f:" + id, err: fmt.Errorf("parsing %s: %w", f.Name(), err)}
	} else {
		bid := BuildID(ef)
		key := "f:" + id
		if bid != "" {
			key = "b:" + bid
		}
		if want != "" && key != want {
			return nil, fmt.Errorf("%s: %w", f.Name(), errWrongObject)
		}
		s.mu.Lock()
		if o = s.cache.get(key); o != nil {
			s.cache.hits++
			s.cache.addAlias(o, id)
		}
		s.mu.Unlock()
		if o != nil {
			return o, nil
		}
		o = parseObject(ef, f, key, bid, s.opts.MaxObjectBytes/2)
		if o.err != nil {
			o.err = fmt.Errorf("%s: %w", f.Name(), o.err)
		}
		if o.warn != nil {
			o.warn = fmt.Errorf("%s: %w", f.Name(), o.warn)
		}
	}
	if want != "" && o.key != want {
		return nil, fmt.Errorf("%s: %w", f.Name(), errWrongObject)
	}
	return s.insert(o, id), nil
}

// loadVDSO returns the object of the vDSO of process pid, read from its
// memory, or from this process's when that fails.
func (s *Symbolizer) loadVDSO(pid int, m *procMapping, want string) (*object, error) {
	img, err := readVDSO(s.opts.ProcFS, pid, m.start, m.end)
	if err != nil {
		var err2 error
		if img, err2 = readOwnVDSO(s.opts.ProcFS); err2 != nil {
			return nil, errors.Join(err, err2)
		}
	}
	ef, key, bid, err := identifyImage(img)
	if err != nil {
		return nil, err
	}
	if want != "" && key != want {
		return nil, fmt.Errorf("vdso of process %d: %w", pid, errWrongObject)
	}
	s.mu.Lock()
	o := s.cache.get(key)
	if o != nil {
		s.cache.hits++
	}
	s.mu.Unlock()
	if o != nil {
		return o, nil
	}
	o = parseObject(ef, nil, key, bid, s.opts.MaxObjectBytes/2)
	if o.err != nil {
		o.err = fmt.Errorf("vdso of process %d: %w", pid, o.err)
	}
	return s.insert(o, ""), nil
}

// insert caches a freshly parsed object and returns the cached one.
func (s *Symbolizer) insert(o *object, id string) *object {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.misses++
	if o.err != nil {
		s.st.ObjectErrors++
		s.st.LastObjectError = o.err
	} else if o.warn != nil {
		if errors.Is(o.warn, errOverBudget) {
			s.st.ObjectsReduced++
		}
		s.st.LastObjectError = o.warn
	}
	if s.closed {
		o.release()
		return o
	}
	kept := s.cache.add(o, id)
	if kept != o {
		o.release()
	}
	return kept
}

// reload parses again the evicted object of mapping m: from the process if
// it still runs, else from the same path on this host (or this process's
// vDSO), accepted only if it is the same object (build ID or file identity).
func (s *Symbolizer) reload(p *process, m *procMapping) bool {
	alive := s.alive(p)
	var err error
	if m.path == VDSOMapping {
		pid := p.pid
		if !alive {
			pid = -1 // no such process: falls back to our own vDSO
		}
		_, err = s.loadVDSO(pid, m, m.key)
	} else {
		var f *os.File
		if alive {
			f, err = s.openMapped(p.pid, m)
		}
		if f == nil {
			f, err = os.Open(m.path)
		}
		if err == nil {
			_, err = s.loadFile(f, m.key)
			f.Close()
		}
	}
	if err != nil {
		return false
	}
	s.reloads.Add(1)
	return true
}

// lookupUser resolves a runtime address of mapping m (already moved back
// into the call instruction for return addresses). cached is false when
// m's object is no longer in the cache.
func (s *Symbolizer) lookupUser(m *procMapping, addr uint64) (name, file string, line int, found, cached bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.cache.get(m.key)
	if o == nil {
		return "", "", 0, false, false
	}
	vaddr, ok := o.fileVaddr(addr - m.start + m.offset)
	if !ok {
		return "", "", 0, false, true
	}
	name, file, line, found = o.symbolize(vaddr)
	return name, file, line, found, true
}

// Trim gives back the pages of mapped Go line tables, and of the string
// tables of symbol tables read in place, that lookups read in:
// they are file-backed and cheap to fault in again, and without this they
// count in the agent's RSS until the kernel reclaims them. Call it once the
// profiles of a round are built (bpf.Session does, once per Read, after
// its on-CPU, off-CPU and page-fault profiles): trimming after each one
// would fault the same binaries' tables in again for the next.
func (s *Symbolizer) Trim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.cache.ll.Front(); e != nil; e = e.Next() {
		o := e.Value.(*object)
		if g := o.lines; g != nil && g.region != nil {
			_ = syscall.Madvise(g.region, syscall.MADV_DONTNEED)
		}
		if o.syms != nil && o.syms.region != nil {
			_ = syscall.Madvise(o.syms.region, syscall.MADV_DONTNEED)
		}
	}
}

// snapshot returns the stored snapshot of pid, or nil.
func (s *Symbolizer) snapshot(pid int) *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[pid]
}
