package collect

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrProcessGone is wrapped by the error a process sampler returns when
// its process has exited, is a zombie, or its PID now names another
// process. A sampler returns it once, from the Sample that first sees it,
// and records nothing afterwards; a factory returns it when the process
// is already gone. Callers may stop sampling the target on it.
var ErrProcessGone = errors.New("process gone")

// procWatch is the process a process sampler follows: a PID and the start
// time it had when the sampler was made, so that a reused PID is not
// taken for the same process.
type procWatch struct {
	env   Env
	pid   int
	start uint64 // starttime in /proc/PID/stat, clock ticks after boot
	gone  bool
	dead  bool         // read once as a zombie: the next read finds it gone
	tree  *processTree // shared by the target's samplers; nil: listed by each
}

// processFactory makes the factory of a process sampler: nothing for a
// target without a PID, ErrProcessGone for a PID that is not running.
func processFactory(newSampler func(w *procWatch) (Sampler, error)) Factory {
	return func(env Env, t Target) (Sampler, error) {
		if t.PID <= 0 {
			return nil, nil
		}
		w, err := newProcWatch(env, t.PID)
		if err != nil {
			return nil, err
		}
		w.tree = t.tree
		return newSampler(w)
	}
}

// newProcWatch follows the process pid is now: ErrProcessGone for a PID
// that is not running.
func newProcWatch(env Env, pid int) (*procWatch, error) {
	w := &procWatch{env: env.withDefaults(), pid: pid}
	path := w.path("stat")
	b, err := readFile(path)
	if isGone(err) {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrProcessGone)
	}
	if err != nil {
		return nil, err
	}
	st, err := parseProcStat(path, b)
	if err != nil {
		return nil, err
	}
	if st.state == 'Z' || st.state == 'X' {
		return nil, fmt.Errorf("pid %d has exited: %w", pid, ErrProcessGone)
	}
	w.start = st.starttime
	return w, nil
}

func (w *procWatch) path(elem ...string) string {
	return w.env.proc(append([]string{strconv.Itoa(w.pid)}, elem...)...)
}

// read reads /proc/PID/stat and checks the process is still the one
// followed. ok is false when the sampler must record nothing: the process
// was found gone before (err nil) or now (err wraps ErrProcessGone), or
// the file did not read (err says why).
//
// A zombie is read once, with ok (st.state 'Z'): it has exited, but until
// its parent reaps it the kernel keeps its final counters (CPU time,
// faults, I/O, switches), which a command's watcher waits to read before
// it reaps (agent/diagnose). A sampler records its counters then, not
// what a live process has (memory, descriptors, connections).
func (w *procWatch) read() (st procStat, ok bool, err error) {
	if w.gone {
		return st, false, nil
	}
	path := w.path("stat")
	b, err := readFile(path)
	if isGone(err) {
		return st, false, w.lost("has exited")
	}
	if err != nil {
		return st, false, err
	}
	if st, err = parseProcStat(path, b); err != nil {
		return st, false, err
	}
	switch {
	case st.starttime != w.start:
		return st, false, w.lost("has exited and the PID now names another process")
	case st.state == 'X' || st.state == 'Z' && w.dead:
		return st, false, w.lost("has exited (a zombie, not yet reaped)")
	case st.state == 'Z':
		w.dead = true
	}
	return st, true, nil
}

func (w *procWatch) lost(why string) error {
	w.gone = true
	return fmt.Errorf("pid %d %s: %w", w.pid, why, ErrProcessGone)
}

// failed turns an error reading one of the process's files into
// ErrProcessGone if the process went away meanwhile.
func (w *procWatch) failed(err error) error {
	if !isGone(err) {
		return err
	}
	if _, ok, gerr := w.read(); !ok {
		return gerr
	}
	return err
}

// isGone reports whether err is what reading /proc/PID/... gives once the
// process has gone.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readThreads reads the file of each thread of the process and of its
// descendants with parse (see readThreads), by thread ID (unique across
// the processes), and returns ErrProcessGone once the process is.
func (w *procWatch) readThreads(file string, parse func(path string, b []byte) ([]uint64, error)) (map[string][]uint64, error) {
	cur, err := readThreads(w.env, strconv.Itoa(w.pid), file, parse)
	if err != nil {
		return nil, w.failed(err)
	}
	for _, pid := range w.members() {
		if more, err := readThreads(w.env, pid, file, parse); err == nil {
			maps.Copy(cur, more)
		}
	}
	return cur, nil
}

// readThreads reads one file of each of a process's threads,
// /proc/PID/task/TID/file, with parse, by thread ID: the per-thread read
// that the process samplers sum with threadSum and the process scan sums
// at once (the kernel keeps no per-process total of these counters). A
// thread that exits between the listing and its read is left out. An
// error listing the threads, reading a file or parsing one is returned,
// and so is no thread read at all (wrapping fs.ErrNotExist).
func readThreads(env Env, pid, file string, parse func(path string, b []byte) ([]uint64, error)) (map[string][]uint64, error) {
	dir := env.proc(pid, "task")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	cur := make(map[string][]uint64, len(entries))
	for _, e := range entries {
		tid := e.Name()
		if _, err := strconv.Atoi(tid); err != nil {
			continue
		}
		path := env.proc(pid, "task", tid, file)
		b, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread exited after the listing
		}
		if err != nil {
			return nil, err
		}
		v, err := parse(path, b)
		if err != nil {
			return nil, err
		}
		cur[tid] = v
	}
	if len(cur) == 0 {
		return nil, fmt.Errorf("%s: no thread's %s could be read: %w", dir, file, fs.ErrNotExist)
	}
	return cur, nil
}

// procStat holds the fields of /proc/PID/stat used here; the field
// numbers are those of proc(5).
type procStat struct {
	state            byte   // (3)
	minflt, majflt   uint64 // (10), (12)
	cminflt, cmajflt uint64 // (11), (13): of the children it waited for, and theirs
	utime, stime     uint64 // (14), (15) clock ticks
	cutime, cstime   uint64 // (16), (17): of the children it waited for, and theirs
	threads          uint64 // (20)
	starttime        uint64 // (22) clock ticks after boot
	rss              uint64 // (24) resident pages, as VmRSS counts them
	blkio            uint64 // (42) delayacct_blkio_ticks, 0 without delay accounting
}

// parseProcStat reads /proc/PID/stat. The command name (2) is in
// parentheses and may hold spaces and parentheses itself, so fields are
// counted from the last ')'.
func parseProcStat(path string, b []byte) (procStat, error) {
	var st procStat
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || strings.IndexByte(s, '(') < 0 {
		return st, fmt.Errorf("%s: no (comm) field", path)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3; field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return st, fmt.Errorf("%s: want at least 22 fields, got %d", path, len(f)+2)
	}
	st.state = f[0][0]
	for _, x := range []struct {
		field int
		dst   *uint64
	}{
		{10, &st.minflt}, {11, &st.cminflt}, {12, &st.majflt}, {13, &st.cmajflt},
		{14, &st.utime}, {15, &st.stime}, {16, &st.cutime}, {17, &st.cstime},
		{20, &st.threads}, {22, &st.starttime},
	} {
		v, err := strconv.ParseUint(f[x.field-3], 10, 64)
		if err != nil {
			return st, fmt.Errorf("%s: field %d: %v", path, x.field, err)
		}
		*x.dst = v
	}
	if len(f) > 24-3 {
		st.rss, _ = strconv.ParseUint(f[24-3], 10, 64)
	}
	if len(f) > 42-3 {
		st.blkio, _ = strconv.ParseUint(f[42-3], 10, 64)
	}
	return st, nil
}

// parseStatus reads "Name:\tvalue" lines of /proc/PID/status and returns
// the wanted ones that are present, as numbers; a value in kB is
// returned in bytes.
func parseStatus(path string, b []byte, want ...string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(want))
	err := lines(b, func(n int, line string) error {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil
		}
		wanted := false
		for _, w := range want {
			wanted = wanted || w == key
		}
		if !wanted {
			return nil
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			return lineError(path, n, "%s: no value", key)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return lineError(path, n, "%s: %v", key, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[key] = v
		return nil
	})
	return out, err
}

// threadSum turns per-thread counters into per-process counters that do
// not go backwards when a thread exits. Each reading adds every thread's
// increase since the previous reading, and all of a thread's count the
// first time it is seen, so the past of exited threads stays counted; only
// what an exiting thread did between its last reading and its exit is
// lost. Memory is bounded by the number of live threads.
type threadSum struct {
	last  map[string][]uint64
	total []uint64
}

func newThreadSum(n int) *threadSum {
	return &threadSum{last: map[string][]uint64{}, total: make([]uint64, n)}
}

// add takes a reading of every live thread and returns the totals.
func (s *threadSum) add(cur map[string][]uint64) []uint64 {
	for tid, v := range cur {
		prev, seen := s.last[tid]
		for i := range s.total {
			if seen && v[i] >= prev[i] {
				s.total[i] += v[i] - prev[i]
			} else {
				// New, or a reused TID counting from zero again.
				s.total[i] += v[i]
			}
		}
	}
	s.last = cur
	return s.total
}

// maxTreeProcesses bounds the processes of a target's tree that are read:
// the target and its descendants.
const maxTreeProcesses = 256

// Descendants lists the live descendants of process pid, parents before
// their children, at most maxTreeProcesses-1 of them (see descendants):
// what the eBPF collectors must be told of when they start following a
// process whose children were forked before them (a pre-fork server's
// workers).
func Descendants(env Env, pid int) []int {
	w := &procWatch{env: env.withDefaults(), pid: pid}
	var out []int
	for _, c := range w.descendants(nil) {
		if n, err := strconv.Atoi(c); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// descendants lists the target's descendants, parents before their
// children, at most maxTreeProcesses-1 of them, from each thread's
// /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN; none without it).
// A sampler that lists them often passes its held files (nil: opened and
// closed each time): a 200-thread target has 200 such files.
func (w *procWatch) descendants(files *heldFiles) []string {
	var out []string
	next := []string{strconv.Itoa(w.pid)}
	for len(next) > 0 && len(out) < maxTreeProcesses-1 {
		pid := next[0]
		next = next[1:]
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		tasks, err := os.ReadDir(w.env.proc(pid, "task"))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := files.read(w.env, n, "task/"+t.Name()+"/children")
			if err != nil {
				continue
			}
			for _, c := range strings.Fields(string(b)) {
				if len(out) < maxTreeProcesses-1 {
					out = append(out, c)
					next = append(next, c)
				}
			}
		}
	}
	return out
}

// processTree is a target's descendants as listed for one round of its
// samplers' readings: listing them reads a file per thread of every
// member, which the samplers of a round (CPU, memory, scheduler
// statistics, switches, TCP) would otherwise each do.
type processTree struct {
	mu   sync.Mutex
	at   time.Time
	pids []string
}

// treeListingAge is how long a listing serves: less than any sampling
// interval, more than a round of readings takes.
const treeListingAge = 100 * time.Millisecond

// members lists the target's descendants, from the round's listing when
// it is recent (see descendants).
func (w *procWatch) members() []string {
	if w.tree == nil {
		return w.descendants(nil)
	}
	w.tree.mu.Lock()
	defer w.tree.mu.Unlock()
	if time.Since(w.tree.at) > treeListingAge {
		w.tree.pids, w.tree.at = w.descendants(nil), time.Now()
	}
	return slices.Clone(w.tree.pids)
}

// treeCounters are a process tree's CPU times and faults, each with what
// its members' waited-for children left when they exited.
type treeCounters struct {
	utime, stime, minflt, majflt uint64
	threads                      uint64
	zombie                       bool // the target has exited: these are its final counts
}

// treeStat sums the counters of /proc/PID/stat over the target and its
// descendants, as the eBPF collectors follow them (a shell, make or a
// pre-fork master runs the processes that work). Each member counts with
// its waited-for children's totals (cutime...), so that a child's time
// stays counted when it exits and is reaped: the kernel moves it into its
// parent's. Parents are read before their children, so a child reaped
// between the two reads is missed for one reading rather than counted
// twice; high keeps the totals from going back (a member that exits
// unreaped by the tree takes its time with it). ok is the target's read's.
func (w *procWatch) treeStat(high *treeCounters) (treeCounters, bool, error) {
	st, ok, err := w.read()
	if !ok {
		return treeCounters{}, false, err
	}
	add := func(t *treeCounters, st procStat) {
		t.utime += st.utime + st.cutime
		t.stime += st.stime + st.cstime
		t.minflt += st.minflt + st.cminflt
		t.majflt += st.majflt + st.cmajflt
		if st.state != 'Z' && st.state != 'X' {
			t.threads += st.threads
		}
	}
	t := treeCounters{zombie: st.state == 'Z'}
	add(&t, st)
	for _, pid := range w.members() {
		path := w.env.proc(pid, "stat")
		b, err := readFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		if st, err := parseProcStat(path, b); err == nil {
			add(&t, st)
		}
	}
	t.utime, t.stime = max(t.utime, high.utime), max(t.stime, high.stime)
	t.minflt, t.majflt = max(t.minflt, high.minflt), max(t.majflt, high.majflt)
	*high = t
	return t, true, nil
}
