//go:build linux

package symbolize

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/ianlancetaylor/demangle"
)

// Sample is one sampled stack with its values and labels. Add keeps its
// Values, Labels and NumLabels in the profile: the caller hands them
// over and must not change them after.
type Sample struct {
	PID       int      // thread group ID (the process)
	User      []uint64 // user stack, leaf first, as sampled; zero ends it
	Kernel    []uint64 // kernel stack, leaf first; zero ends it
	Values    []int64  // one per sample type; missing ones are 0, extra ones dropped
	Labels    map[string][]string
	NumLabels map[string][]int64
}

// Builder accumulates samples into one profile, resolving their frames
// through its Symbolizer. It is not safe for concurrent use.
//
// Each sample's locations are its kernel frames, leaf first, then its user
// frames, leaf first. Frames after the first of each stack are return
// addresses: they are looked up one byte back, inside the call, and keep
// their own address in Location.Address, as perf and pprof do. Within a
// profile there is one Mapping per mapped object at one address range, one
// Location per (Mapping, address), whose symbol is that of the first frame
// met at the address, and one Function per (name, file).
//
// The user stack of a process that was never watched and is gone becomes a
// single location whose function is UnknownFunction, without a mapping; a
// process seen for the first time and still running is watched then. A
// frame that cannot be resolved keeps its address and mapping and has no
// function. No sample is dropped.
type Builder struct {
	s          *Symbolizer
	p          *profile.Profile
	start      time.Time
	byKey      map[mappingKey]*profile.Mapping
	byProcMap  map[*procMapping]*profile.Mapping
	kernelMaps map[string]*profile.Mapping
	locs       map[locKey]*profile.Location
	kernelLocs map[uint64]*profile.Location
	funcs      map[funcKey]*profile.Function
	procs      map[int]*builderProc
	unknown    *profile.Location
}

type mappingKey struct {
	start, limit, offset uint64
	file, objKey         string
	// pid keeps apart the anonymous mappings (a JIT's code) of processes
	// that happen to map the same range: what lies there, and its perf
	// map names, are each process's own. 0 for mappings of files.
	pid int
}

type locKey struct {
	m    *profile.Mapping // nil: the address is in no mapping
	addr uint64
	pid  int // for an address in no mapping: what is there is each process's own
}

type funcKey struct{ name, file string }

// builderProc is what a Builder knows of a PID.
type builderProc struct {
	pid       int
	p         *process // nil: gone before it was watched
	refreshed bool     // its maps were re-read for a frame outside them
	failed    map[*procMapping]bool
	perf      *perfMap // its JIT's symbols, read at its first anonymous frame
	perfRead  bool
}

// NewBuilder starts a profile with the given sample types and period.
// The profile's TimeNanos is when the builder starts (or Profile last
// emptied it) and DurationNanos runs until Profile; set them on the result
// to say otherwise.
func (s *Symbolizer) NewBuilder(sampleTypes []*profile.ValueType, periodType *profile.ValueType, period int64) *Builder {
	b := &Builder{s: s}
	b.reset(sampleTypes, periodType, period)
	return b
}

func (b *Builder) reset(sampleTypes []*profile.ValueType, periodType *profile.ValueType, period int64) {
	types := make([]*profile.ValueType, len(sampleTypes))
	for i, t := range sampleTypes {
		c := *t
		types[i] = &c
	}
	var pt *profile.ValueType
	if periodType != nil {
		c := *periodType
		pt = &c
	}
	b.start = time.Now()
	b.p = &profile.Profile{SampleType: types, PeriodType: pt, Period: period, TimeNanos: b.start.UnixNano()}
	b.byKey = map[mappingKey]*profile.Mapping{}
	b.byProcMap = map[*procMapping]*profile.Mapping{}
	b.kernelMaps = map[string]*profile.Mapping{}
	b.locs = map[locKey]*profile.Location{}
	b.kernelLocs = map[uint64]*profile.Location{}
	b.funcs = map[funcKey]*profile.Function{}
	b.procs = map[int]*builderProc{}
	b.unknown = nil
}

// Profile returns the profile of the samples added so far, and empties the
// Builder, which can go on with the next profile.
func (b *Builder) Profile() *profile.Profile {
	p := b.p
	p.DurationNanos = time.Since(b.start).Nanoseconds()
	b.reset(p.SampleType, p.PeriodType, p.Period)
	return p
}

// Add resolves the sample's frames and adds it to the profile.
func (b *Builder) Add(in Sample) {
	kernel := untilZero(in.Kernel)
	user := untilZero(in.User)
	locs := make([]*profile.Location, 0, len(kernel)+len(user))
	unknownKernel := 0
	for i, a := range kernel {
		l := b.kernelLocation(a, i > 0)
		if len(l.Line) == 0 {
			unknownKernel++
		}
		locs = append(locs, l)
	}
	unknownUser := 0
	if len(user) > 0 {
		if bp := b.process(in.PID); bp.p == nil {
			locs = append(locs, b.unknownLocation())
			b.s.unknownPID.Add(1)
			unknownUser = len(user)
		} else {
			for i, a := range user {
				l := b.userLocation(bp, a, i > 0)
				if len(l.Line) == 0 {
					unknownUser++
				}
				locs = append(locs, l)
			}
		}
	}
	b.s.samples.Add(1)
	b.s.kernelFrames.Add(uint64(len(kernel)))
	b.s.unknownKernel.Add(uint64(unknownKernel))
	b.s.userFrames.Add(uint64(len(user)))
	b.s.unknownUser.Add(uint64(unknownUser))

	values := in.Values
	if len(values) != len(b.p.SampleType) {
		values = make([]int64, len(b.p.SampleType))
		copy(values, in.Values)
	}
	out := &profile.Sample{Location: locs, Value: values}
	if len(in.Labels) > 0 {
		out.Label = in.Labels
	}
	if len(in.NumLabels) > 0 {
		out.NumLabel = in.NumLabels
	}
	b.p.Sample = append(b.p.Sample, out)
}

func untilZero(stack []uint64) []uint64 {
	if i := slices.Index(stack, 0); i >= 0 {
		return stack[:i]
	}
	return stack
}

// process returns what the Builder knows of pid, watching it if the
// Symbolizer does not know it yet.
func (b *Builder) process(pid int) *builderProc {
	if bp := b.procs[pid]; bp != nil {
		return bp
	}
	bp := &builderProc{pid: pid, p: b.s.snapshot(pid)}
	if bp.p != nil {
		// A PID reused since the snapshot: the snapshot is another
		// process's. A process that is gone keeps its snapshot (its
		// samples came before it exited), and so does one whose new
		// snapshot cannot be read. /proc/PID's inode unchanged is the
		// same process (procInode), without reading its stat.
		if ino := procInode(b.s.opts.ProcFS, pid); ino == 0 || ino != bp.p.ino {
			state, start, err := readStat(b.s.opts.ProcFS, pid)
			if err == nil && state != 'Z' && state != 'X' && start != bp.p.startTime {
				if p, err := b.s.watch(pid); err == nil {
					bp.p = p
					b.s.lazyWatches.Add(1)
				}
			}
		}
	}
	if bp.p == nil {
		p, err := b.s.watch(pid)
		switch {
		case err == nil:
			bp.p = p
			b.s.lazyWatches.Add(1)
		case errors.Is(err, ErrProcessGone):
			b.s.goneBeforeWatch.Add(1)
		}
	}
	b.procs[pid] = bp
	return bp
}

func (b *Builder) unknownLocation() *profile.Location {
	if b.unknown == nil {
		b.unknown = b.newLocation(nil, 0, b.function(UnknownFunction, ""), 0)
	}
	return b.unknown
}

func (b *Builder) userLocation(bp *builderProc, addr uint64, ret bool) *profile.Location {
	m := bp.p.find(addr)
	if m == nil && !bp.refreshed && time.Since(bp.p.read) > mapsRefreshAge {
		// The process may have mapped more since the snapshot.
		bp.refreshed = true
		if p, err := b.s.watch(bp.pid); err == nil && p.startTime == bp.p.startTime {
			bp.p = p
			m = p.find(addr)
		}
	}
	var pm *profile.Mapping
	if m != nil {
		pm = b.userMapping(m, bp.pid)
	}
	key := locKey{m: pm, addr: addr}
	if pm == nil {
		key.pid = bp.pid
	}
	if l := b.locs[key]; l != nil {
		return l
	}
	var fn *profile.Function
	var line int
	if m != nil && m.key != "" && !bp.failed[m] {
		look := addr
		if ret {
			look--
		}
		name, file, ln, found, cached := b.s.lookupUser(m, look)
		if !cached {
			if b.s.reload(bp.p, m) {
				name, file, ln, found, _ = b.s.lookupUser(m, look)
			} else {
				if bp.failed == nil {
					bp.failed = map[*procMapping]bool{}
				}
				bp.failed[m] = true
			}
		}
		if found {
			if strings.HasPrefix(name, unnamedPrefix) {
				name = filepath.Base(m.path) + name
			}
			fn, line = b.function(name, file), ln
		}
	}
	if fn == nil && (m == nil || m.key == "") {
		// JIT-compiled code, named in the process's perf map, if any
		// (outside every mapping too: the JIT mapped it after the
		// process's maps were read, and the process is gone).
		if !bp.perfRead {
			bp.perfRead = true
			bp.perf = readPerfMap(b.s.opts.ProcFS, bp.pid, bp.p.startTime)
		}
		look := addr
		if ret {
			look--
		}
		if name, ok := bp.perf.lookup(look); ok {
			fn = b.function(name, "")
		}
	}
	l := b.newLocation(pm, addr, fn, line)
	b.locs[key] = l
	return l
}

func (b *Builder) userMapping(m *procMapping, pid int) *profile.Mapping {
	if pm := b.byProcMap[m]; pm != nil {
		return pm
	}
	file := m.path
	if file == "" {
		file = AnonMapping
	}
	key := mappingKey{start: m.start, limit: m.end, offset: m.offset, file: file, objKey: m.key}
	if m.key == "" {
		key.pid = pid
	}
	pm := b.byKey[key]
	if pm == nil {
		pm = &profile.Mapping{
			ID:             uint64(len(b.p.Mapping) + 1),
			Start:          m.start,
			Limit:          m.end,
			Offset:         m.offset,
			File:           file,
			BuildID:        m.buildID,
			HasFunctions:   m.hasSyms,
			HasFilenames:   m.hasGo,
			HasLineNumbers: m.hasGo,
		}
		b.p.Mapping = append(b.p.Mapping, pm)
		b.byKey[key] = pm
	}
	b.byProcMap[m] = pm
	return pm
}

func (b *Builder) kernelLocation(addr uint64, ret bool) *profile.Location {
	if l := b.kernelLocs[addr]; l != nil {
		return l
	}
	look := addr
	if ret {
		look--
	}
	var (
		pm   *profile.Mapping
		fn   *profile.Function
		name string
		mod  = -1
		ok   bool
	)
	if addr >= kernelAddrMin {
		k := b.s.kernelSymbols(false)
		if k != nil {
			name, mod, ok = k.lookup(look)
		}
		if !ok {
			// A module or BPF program loaded since kallsyms was read?
			if k2 := b.s.kernelSymbols(true); k2 != nil && k2 != k {
				k = k2
				name, mod, ok = k.lookup(look)
			}
		}
		if ok {
			pm = b.kernelMapping(k.mods[mod])
			fn = b.function(name, "")
		}
	}
	l := b.newLocation(pm, addr, fn, 0)
	b.kernelLocs[addr] = l
	return l
}

func (b *Builder) kernelMapping(m kmod) *profile.Mapping {
	if pm := b.kernelMaps[m.name]; pm != nil {
		return pm
	}
	pm := &profile.Mapping{
		ID:           uint64(len(b.p.Mapping) + 1),
		Start:        m.start,
		Limit:        m.limit,
		File:         m.name,
		HasFunctions: true,
	}
	b.p.Mapping = append(b.p.Mapping, pm)
	b.kernelMaps[m.name] = pm
	return pm
}

func (b *Builder) newLocation(m *profile.Mapping, addr uint64, fn *profile.Function, line int) *profile.Location {
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: m, Address: addr}
	if fn != nil {
		l.Line = []profile.Line{{Function: fn, Line: int64(line)}}
	}
	b.p.Location = append(b.p.Location, l)
	return l
}

// demangled is a C++ or Rust symbol's name as pprof shows it by default
// (its demangle mode ""): no parameters, no template arguments, so that
// the overloads and instances of one function are one frame
// ("os::PlatformEvent::park" for _ZN2os13PlatformEvent4parkEv). The
// profile keeps the symbol as its SystemName, as pprof's own symbolizer
// does; other names are themselves.
func demangled(name string) string {
	if !strings.HasPrefix(name, "_Z") && !strings.HasPrefix(name, "_R") {
		return name
	}
	return demangle.Filter(name, demangle.NoParams, demangle.NoEnclosingParams, demangle.NoTemplateParams)
}

// function returns the Function of (name, file). The strings are copied:
// they may point into a symbol table that is evicted later.
func (b *Builder) function(name, file string) *profile.Function {
	if f := b.funcs[funcKey{name, file}]; f != nil {
		return f
	}
	name, file = strings.Clone(name), strings.Clone(file)
	f := &profile.Function{
		ID:         uint64(len(b.p.Function) + 1),
		Name:       demangled(name),
		SystemName: name,
		Filename:   file,
	}
	b.p.Function = append(b.p.Function, f)
	b.funcs[funcKey{name, file}] = f
	return f
}
