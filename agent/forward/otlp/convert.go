package otlp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/perfhound/perfhound/agent/forward"
)

// Resource attribute keys, after the OpenTelemetry semantic conventions.
const (
	AttrServiceName    = "service.name"
	AttrServiceVersion = "service.version"
	AttrHostName       = "host.name"
	AttrExecutableName = "process.executable.name"
	// The build ID attribute names its kind: GNU (hex, from
	// .note.gnu.build-id) or Go (`go tool buildid`).
	AttrBuildIDGNU  = "process.executable.build_id.gnu"
	AttrBuildIDGo   = "process.executable.build_id.go"
	AttrContainerID = "container.id"

	// ScopeName is the instrumentation scope of every profile sent.
	ScopeName = "perfhound"
)

// The agent's identity labels (agent/identity) that become resource
// attributes under their semantic-convention names instead of their own.
const (
	labelService   = "service_name"
	labelVersion   = "version"
	labelExe       = "exe"
	labelBuildID   = "build_id"
	labelContainer = "container_id"
)

// sampleLabelKeys renames pprof sample labels that have a
// semantic-convention name; the others keep theirs.
var sampleLabelKeys = map[string]string{
	"pid":    "process.pid",
	"tid":    "thread.id",
	"thread": "thread.name",
}

// Convert turns a window into one OTLP profiles request: one resource
// (the service on its host), one scope, and one OTLP profile per pprof
// sample type, since an OTLP profile carries a single sample type. The
// dictionary (strings, functions, mappings, locations, stacks,
// attributes) is shared by all of them and holds each entry once.
// Samples whose value is zero for a sample type are left out of that
// type's profile: they add nothing to any sum.
//
// Written here: contrib's pprof translator (pkg/translator/pprof) is not
// served at the collector's v0.165.0 release, and pdata has none; the pprofile.Set* helpers search linearly and
// would be quadratic in a real profile, hence the maps.
func Convert(w forward.Window) (pprofile.Profiles, error) {
	return convert(w, -1)
}

// convert converts the window's profile number only, or all of them when
// only is negative.
func convert(w forward.Window, only int) (pprofile.Profiles, error) {
	out := pprofile.NewProfiles()
	d := newDict(out.Dictionary())
	rp := out.ResourceProfiles().AppendEmpty()
	resourceAttributes(w).CopyTo(rp.Resource().Attributes())
	sp := rp.ScopeProfiles().AppendEmpty()
	sp.Scope().SetName(ScopeName)
	for i, fp := range w.Profiles {
		if only >= 0 && i != only {
			continue
		}
		p := fp.Profile
		if p == nil {
			return out, fmt.Errorf("profile %d (%s) of %s: %w: no profile", i, fp.Kind, w.Service, forward.ErrInvalid)
		}
		if err := p.CheckValid(); err != nil {
			return out, fmt.Errorf("profile %d (%s) of %s: %w: %v", i, fp.Kind, w.Service, forward.ErrInvalid, err)
		}
		d.add(sp.Profiles(), w, i, fp)
	}
	return out, nil
}

// resourceAttributes names the window's service, host and process by the
// semantic conventions; the window's other labels (after the sink's
// relabeling) go along under their own names.
func resourceAttributes(w forward.Window) pcommon.Map {
	m := pcommon.NewMap()
	for k, v := range w.Labels {
		switch k {
		case labelService, labelVersion, labelExe, labelBuildID, labelContainer:
		default:
			m.PutStr(k, v)
		}
	}
	service := w.Service
	if service == "" {
		service = w.Labels[labelService]
	}
	putNonEmpty(m, AttrServiceName, service)
	version := w.Version
	if version == "" {
		version = w.Labels[labelVersion]
	}
	putNonEmpty(m, AttrServiceVersion, version)
	putNonEmpty(m, AttrHostName, w.Host)
	putNonEmpty(m, AttrContainerID, w.Labels[labelContainer])
	exe, buildID := w.Labels[labelExe], w.Labels[labelBuildID]
	if main := mainMapping(w); main != nil {
		if exe == "" && main.File != "" {
			exe = path.Base(main.File)
		}
		if buildID == "" {
			buildID = main.BuildID
		}
	}
	putNonEmpty(m, AttrExecutableName, exe)
	if buildID != "" {
		m.PutStr(buildIDAttribute(buildID), buildID)
	}
	return m
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// buildIDAttribute tells a GNU build ID (hex) from a Go one (slash
// separated base64 parts), as agent/identity reads either.
func buildIDAttribute(id string) string {
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return AttrBuildIDGo
		}
	}
	return AttrBuildIDGNU
}

// mainMapping returns the main executable's mapping of the window's
// first profile when that profile is one process's (runtime/pprof puts
// the executable first); a host-wide profile of many processes has no
// main executable.
func mainMapping(w forward.Window) *profile.Mapping {
	for _, fp := range w.Profiles {
		p := fp.Profile
		if p == nil || len(p.Mapping) == 0 {
			continue
		}
		if !oneProcess(p) {
			return nil
		}
		return p.Mapping[0]
	}
	return nil
}

// oneProcess reports whether p's samples name at most one pid.
func oneProcess(p *profile.Profile) bool {
	pid := ""
	for _, s := range p.Sample {
		v := ""
		if n := s.NumLabel["pid"]; len(n) > 0 {
			v = strconv.FormatInt(n[0], 10)
		} else if l := s.Label["pid"]; len(l) > 0 {
			v = l[0]
		}
		if v == "" {
			continue
		}
		if pid != "" && v != pid {
			return false
		}
		pid = v
	}
	return true
}

// dict fills a ProfilesDictionary, each entry once.
type dict struct {
	d         pprofile.ProfilesDictionary
	strings   map[string]int32
	functions map[functionKey]int32
	mappings  map[mappingKey]int32
	locations map[string]int32 // key: locationKey
	stacks    map[string]int32 // key: the location indices' bytes
	attrs     map[attrKey]int32
	buf       []byte
}

type functionKey struct {
	name, system, file int32
	start              int64
}

type mappingKey struct {
	start, limit, offset uint64
	file, buildID        int32 // buildID: its attribute's index, 0 for none
}

type attrKey struct {
	key, unit int32
	str       string // strings joined by NUL, or ints in decimal joined by NUL
	num       bool
	list      bool
}

func newDict(d pprofile.ProfilesDictionary) *dict {
	x := &dict{
		d:         d,
		strings:   map[string]int32{"": 0},
		functions: map[functionKey]int32{{}: 0},
		mappings:  map[mappingKey]int32{{}: 0},
		locations: map[string]int32{},
		stacks:    map[string]int32{"": 0},
		attrs:     map[attrKey]int32{},
	}
	// Index 0 of every table is the zero value, which OTLP reserves for
	// "none".
	d.StringTable().Append("")
	d.FunctionTable().AppendEmpty()
	d.MappingTable().AppendEmpty()
	d.LocationTable().AppendEmpty()
	d.StackTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	x.locations[string(x.locationKey(0, 0, nil))] = 0
	return x
}

func (x *dict) str(s string) int32 {
	if i, ok := x.strings[s]; ok {
		return i
	}
	i := int32(x.d.StringTable().Len())
	x.d.StringTable().Append(s)
	x.strings[s] = i
	return i
}

func (x *dict) function(f *profile.Function) int32 {
	if f == nil {
		return 0
	}
	k := functionKey{x.str(f.Name), x.str(f.SystemName), x.str(f.Filename), f.StartLine}
	if i, ok := x.functions[k]; ok {
		return i
	}
	i := int32(x.d.FunctionTable().Len())
	fn := x.d.FunctionTable().AppendEmpty()
	fn.SetNameStrindex(k.name)
	fn.SetSystemNameStrindex(k.system)
	fn.SetFilenameStrindex(k.file)
	fn.SetStartLine(k.start)
	x.functions[k] = i
	return i
}

func (x *dict) mapping(m *profile.Mapping) int32 {
	if m == nil {
		return 0
	}
	k := mappingKey{m.Start, m.Limit, m.Offset, x.str(m.File), 0}
	if m.BuildID != "" {
		k.buildID = x.strAttr(buildIDAttribute(m.BuildID), m.BuildID)
	}
	if i, ok := x.mappings[k]; ok {
		return i
	}
	i := int32(x.d.MappingTable().Len())
	mm := x.d.MappingTable().AppendEmpty()
	mm.SetMemoryStart(k.start)
	mm.SetMemoryLimit(k.limit)
	mm.SetFileOffset(k.offset)
	mm.SetFilenameStrindex(k.file)
	if k.buildID != 0 {
		mm.AttributeIndices().Append(k.buildID)
	}
	x.mappings[k] = i
	return i
}

// locationKey encodes a location's mapping, address and lines (function
// index, line, column) into x.buf.
func (x *dict) locationKey(mapping int32, addr uint64, lines [][3]int64) []byte {
	b := binary.AppendVarint(x.buf[:0], int64(mapping))
	b = binary.AppendUvarint(b, addr)
	for _, l := range lines {
		b = binary.AppendVarint(b, l[0])
		b = binary.AppendVarint(b, l[1])
		b = binary.AppendVarint(b, l[2])
	}
	x.buf = b
	return b
}

func (x *dict) location(l *profile.Location) int32 {
	mapping := x.mapping(l.Mapping)
	lines := make([][3]int64, len(l.Line))
	for j, ln := range l.Line {
		lines[j] = [3]int64{int64(x.function(ln.Function)), ln.Line, ln.Column}
	}
	key := x.locationKey(mapping, l.Address, lines)
	if i, ok := x.locations[string(key)]; ok {
		return i
	}
	i := int32(x.d.LocationTable().Len())
	loc := x.d.LocationTable().AppendEmpty()
	loc.SetMappingIndex(mapping)
	loc.SetAddress(l.Address)
	for _, ln := range lines {
		line := loc.Lines().AppendEmpty()
		line.SetFunctionIndex(int32(ln[0]))
		line.SetLine(ln[1])
		line.SetColumn(ln[2])
	}
	x.locations[string(key)] = i
	return i
}

// stack returns the index of the stack of locations (leaf first, as in
// pprof), given as location table indices.
func (x *dict) stack(locs []int32) int32 {
	b := x.buf[:0]
	for _, l := range locs {
		b = binary.AppendUvarint(b, uint64(l))
	}
	x.buf = b
	if i, ok := x.stacks[string(b)]; ok {
		return i
	}
	i := int32(x.d.StackTable().Len())
	x.d.StackTable().AppendEmpty().LocationIndices().FromRaw(slices.Clone(locs))
	x.stacks[string(b)] = i
	return i
}

func (x *dict) strAttr(key, value string) int32 {
	return x.attr(attrKey{key: x.str(key), str: value}, func(v pcommon.Value) { v.SetStr(value) })
}

func (x *dict) attr(k attrKey, set func(pcommon.Value)) int32 {
	if i, ok := x.attrs[k]; ok {
		return i
	}
	i := int32(x.d.AttributeTable().Len())
	a := x.d.AttributeTable().AppendEmpty()
	a.SetKeyStrindex(k.key)
	a.SetUnitStrindex(k.unit)
	set(a.Value())
	x.attrs[k] = i
	return i
}

// sampleAttrs returns the attribute indices of a pprof sample's labels,
// string and numeric (with their units), in key order.
func (x *dict) sampleAttrs(s *profile.Sample) []int32 {
	var idx []int32
	for _, k := range sortedKeys(s.Label) {
		vs := s.Label[k]
		key := attrKey{key: x.str(labelKey(k)), str: strings.Join(vs, "\x00"), list: len(vs) > 1}
		idx = append(idx, x.attr(key, func(v pcommon.Value) {
			if len(vs) == 1 {
				v.SetStr(vs[0])
				return
			}
			sl := v.SetEmptySlice()
			for _, s := range vs {
				sl.AppendEmpty().SetStr(s)
			}
		}))
	}
	for _, k := range sortedKeys(s.NumLabel) {
		vs := s.NumLabel[k]
		unit := ""
		if u := s.NumUnit[k]; len(u) > 0 {
			unit = u[0]
		}
		strs := make([]string, len(vs))
		for j, n := range vs {
			strs[j] = strconv.FormatInt(n, 10)
		}
		key := attrKey{key: x.str(labelKey(k)), unit: x.str(unit), str: strings.Join(strs, "\x00"), num: true, list: len(vs) > 1}
		idx = append(idx, x.attr(key, func(v pcommon.Value) {
			if len(vs) == 1 {
				v.SetInt(vs[0])
				return
			}
			sl := v.SetEmptySlice()
			for _, n := range vs {
				sl.AppendEmpty().SetInt(n)
			}
		}))
	}
	return idx
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func labelKey(k string) string {
	if sc, ok := sampleLabelKeys[k]; ok {
		return sc
	}
	return k
}

// add appends one OTLP profile per sample type of fp to profiles.
func (x *dict) add(profiles pprofile.ProfilesSlice, w forward.Window, n int, fp forward.Profile) {
	p := fp.Profile
	locs := make(map[*profile.Location]int32, len(p.Location))
	for _, l := range p.Location {
		locs[l] = x.location(l)
	}
	stacks := make([]int32, len(p.Sample))
	attrs := make([][]int32, len(p.Sample))
	ids := make([]int32, 0, 64)
	for j, s := range p.Sample {
		ids = ids[:0]
		for _, l := range s.Location {
			ids = append(ids, locs[l])
		}
		stacks[j] = x.stack(ids)
		attrs[j] = x.sampleAttrs(s)
	}
	start, duration := p.TimeNanos, p.DurationNanos
	if start == 0 {
		start = w.Start.UnixNano()
	}
	if duration == 0 && w.End.After(w.Start) {
		duration = w.End.Sub(w.Start).Nanoseconds()
	}
	for t, st := range p.SampleType {
		op := profiles.AppendEmpty()
		op.SampleType().SetTypeStrindex(x.str(st.Type))
		op.SampleType().SetUnitStrindex(x.str(st.Unit))
		if p.PeriodType != nil {
			op.PeriodType().SetTypeStrindex(x.str(p.PeriodType.Type))
			op.PeriodType().SetUnitStrindex(x.str(p.PeriodType.Unit))
		}
		op.SetPeriod(p.Period)
		op.SetTime(pcommon.Timestamp(uint64(max(start, 0))))
		op.SetDurationNano(uint64(max(duration, 0)))
		op.SetProfileID(profileID(w, n, fp.Kind, st))
		for j, s := range p.Sample {
			v := s.Value[t]
			if v == 0 {
				continue
			}
			os := op.Samples().AppendEmpty()
			os.SetStackIndex(stacks[j])
			os.Values().Append(v)
			os.AttributeIndices().FromRaw(attrs[j])
		}
	}
}

// profileID is the same for the same window's profile each time it is
// sent, so that a backend can tell a retry from new data.
func profileID(w forward.Window, n int, kind any, st *profile.ValueType) pprofile.ProfileID {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%v\x00%s\x00%s",
		w.Service, w.Version, w.Host, w.Start.UnixNano(), n, kind, st.Type, st.Unit)
	var id pprofile.ProfileID
	copy(id[:], h.Sum(nil))
	return id
}
