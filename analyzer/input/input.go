// Package input recognises what a user hands to perfhound by its content,
// not its name: Go benchmark output (the format golang.org/x/perf/benchfmt
// reads) and pprof profiles (gzipped or not). Directories are walked, so a
// folder that `go test -bench -count N -cpuprofile` filled can be passed as is.
//
// Every file is read under a size cap, gzip included, and every file's
// parse is charged to the run's memory budget (Limits.Budget) before it
// is made, counted in what parsing builds (samples, locations, benchmark
// results), so a huge or malicious input costs a bounded amount of memory
// and ends in a *FileError that names the file. Executables (the pkg.test binary that -cpuprofile
// leaves behind) are skipped and reported, because Go profiles already
// carry their symbols.
package input

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"golang.org/x/perf/benchfmt"

	"github.com/perfhound/perfhound/analyzer/internal/par"
	"github.com/perfhound/perfhound/analyzer/internal/regfile"
	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// Sentinel problems a FileError can wrap; test them with errors.Is.
var (
	ErrEmpty        = errors.New("empty file")
	ErrTooLarge     = profdecode.ErrTooLarge
	ErrOverBudget   = profdecode.ErrOverBudget
	ErrNestedGzip   = profdecode.ErrNestedGzip
	ErrNotRegular   = regfile.ErrNotRegular
	ErrUnrecognized = errors.New("neither Go benchmark output nor a pprof profile")
	ErrBadProfile   = errors.New("looks like a pprof profile but does not parse")
	ErrNoSamples    = errors.New("pprof profile has no samples")
	ErrNoBenchmarks = errors.New("no benchmark results")
	ErrNoInputs     = errors.New("no input files")
)

// FileError is a problem with one input file.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Limits bounds what one file, and all of a run's files, may cost.
type Limits struct {
	// MaxFileBytes caps a file's size on disk and, for gzip, its
	// decompressed size.
	MaxFileBytes int64
	// Budget, when not nil, is the memory the whole run may spend: every
	// file's buffers while it is read and its parsed profiles and
	// benchmark results after are charged to it, before they are made.
	// Share one between the loads of a run (base and head).
	Budget *profdecode.Budget
}

// DefaultLimits allows 256 MiB a file: far above a real CPU profile
// (a few MB) or benchmark log, far below this machine's memory.
var DefaultLimits = Limits{MaxFileBytes: 256 << 20}

// kind is what a file was recognised as.
type kind int

const (
	kindBench kind = iota + 1
	kindProfile
	kindExecutable
)

// Profile is a parsed pprof profile and the file it came from.
type Profile struct {
	File string
	*profile.Profile
}

// Set is everything loaded for one side of a comparison.
type Set struct {
	// Paths are the arguments the set was loaded from.
	Paths []string
	// Bench holds every benchmark result, in file order.
	Bench []*benchfmt.Result
	// Units is the unit metadata ("Unit x better=higher") the files declared.
	Units benchfmt.UnitMetadataMap
	// Profiles holds every profile, in file order.
	Profiles []Profile
	// Skipped lists files that were recognised but not used, with why.
	Skipped []string
	// Warnings are problems that did not stop the load, such as a
	// malformed benchmark line (reported with file and line).
	Warnings []string

	// charged is what the set's profiles and results hold of the budget.
	charged int64
}

// counts returns how many benchmark files and profiles the set holds.
func (s *Set) counts() (bench, profiles int) {
	seen := map[string]bool{}
	for _, r := range s.Bench {
		f, _ := r.Pos()
		seen[f] = true
	}
	return len(seen), len(s.Profiles)
}

// Describe summarises the set in a few words, e.g. "10 benchmark files, 10 profiles".
func (s *Set) Describe() string {
	b, p := s.counts()
	var parts []string
	if b > 0 {
		parts = append(parts, plural(b, "benchmark file"))
	}
	if p > 0 {
		parts = append(parts, plural(p, "profile"))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Load reads every file named by paths and sorts them into benchmark
// results and profiles. Directories are walked (see expand); a file the
// walk finds but cannot use is skipped and listed in Skipped. The first
// named file that cannot be used, or found file that cannot be parsed,
// ends the load with a *FileError.
func Load(paths []string, lim Limits) (*Set, error) {
	if lim.MaxFileBytes <= 0 {
		lim.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	files, skipped, err := expand(paths)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, &FileError{File: strings.Join(paths, " "), Err: noInputs(skipped)}
	}
	// Files are read and parsed in parallel (profiles dominate the cost),
	// then added in file order so the result does not depend on timing.
	loaded := make([]*Set, len(files))
	errs := make([]error, len(files))
	// failed is the first file known to end the load: files after it are
	// not read (the load returns the first error in file order).
	var failed atomic.Int64
	failed.Store(int64(len(files)))
	load := func(i int) {
		if int64(i) > failed.Load() {
			return
		}
		if loaded[i] != nil {
			lim.Budget.Refund(loaded[i].charged)
		}
		one := &Set{Units: benchfmt.UnitMetadataMap{}}
		errs[i] = one.add(files[i], lim)
		loaded[i] = one
		if errs[i] != nil && !errors.Is(errs[i], ErrOverBudget) {
			for {
				f := failed.Load()
				if int64(i) >= f || failed.CompareAndSwap(f, int64(i)) {
					break
				}
			}
		}
	}
	par.Do(len(files), load)
	// A file refused for the budget while others were in memory beside it
	// may fit once their read buffers are gone: read those again, one at
	// a time, so that parallelism never makes a run fail that fits.
	for i := range files {
		if errors.Is(errs[i], ErrOverBudget) && len(files) > 1 && runtime.GOMAXPROCS(0) > 1 {
			load(i)
		}
		if errs[i] != nil {
			break
		}
	}
	set := &Set{Paths: paths, Units: benchfmt.UnitMetadataMap{}, Skipped: skipped}
	for i, one := range loaded {
		if errs[i] != nil {
			for _, one := range loaded {
				if one != nil {
					lim.Budget.Refund(one.charged)
				}
			}
			return nil, errs[i]
		}
		set.charged += one.charged
		set.Bench = append(set.Bench, one.Bench...)
		set.Profiles = append(set.Profiles, one.Profiles...)
		set.Skipped = append(set.Skipped, one.Skipped...)
		set.Warnings = append(set.Warnings, one.Warnings...)
		for k, v := range one.Units {
			set.Units[k] = v
		}
	}
	return set, nil
}

// noInputs is ErrNoInputs, with what was skipped when that is why.
func noInputs(skipped []string) error {
	if len(skipped) == 0 {
		return ErrNoInputs
	}
	return fmt.Errorf("%w (skipped: %s)", ErrNoInputs, strings.Join(skipped, "; "))
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (s *Set) add(src source, lim Limits) error {
	data, charged, err := readFile(src.path, lim)
	defer lim.Budget.Refund(charged) // the file's bytes are garbage once parsed
	if src.walked && errors.Is(err, ErrNotRegular) {
		s.Skipped = append(s.Skipped, skipNote(src.path, errors.Unwrap(err)))
		return nil
	}
	if err != nil {
		return err
	}
	return s.addData(src.path, data, lim)
}

// addData sorts one file's (decompressed) content into the set.
func (s *Set) addData(file string, data []byte, lim Limits) error {
	kind, p, charged, err := recognise(data, lim)
	if err != nil {
		return &FileError{File: file, Err: err}
	}
	s.charged += charged
	switch kind {
	case kindExecutable:
		s.Skipped = append(s.Skipped, file+": executable, skipped (profiles carry their own symbols)")
	case kindBench:
		return s.addBench(file, data, lim.Budget)
	case kindProfile:
		s.Profiles = append(s.Profiles, Profile{File: file, Profile: p})
	}
	return nil
}

// resultCost estimates the bytes a cloned benchmark result holds: the
// Result and its pointer, its name and values, and its configuration,
// which benchfmt copies whole into every result, so that a file of many
// configuration lines and many results costs their product.
func resultCost(r *benchfmt.Result) int64 {
	n := int64(112 + 8 + len(r.Name) + 48*len(r.Values) + 48*len(r.Config))
	for _, c := range r.Config {
		n += int64(len(c.Value))
	}
	return n
}

// charge takes n bytes of the budget for what the set keeps.
func (s *Set) charge(b *profdecode.Budget, n int64) error {
	if err := b.Charge(n); err != nil {
		return err
	}
	s.charged += n
	return nil
}

func (s *Set) addBench(file string, data []byte, b *profdecode.Budget) error {
	warn := fileWarnings{file: file}
	data = blankLongLines(data, func(line, n int) {
		warn.add(fmt.Sprintf("%s:%d: line of %d bytes skipped (longer than %d)", file, line, n, maxLine))
	})
	rd := benchfmt.NewReader(bytes.NewReader(data), file)
	n := 0
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.Result:
			if dropped := dropNonFinite(rec); dropped != "" {
				f, line := rec.Pos()
				warn.add(fmt.Sprintf("%s:%d: Benchmark%s: not finite, dropped: %s", f, line, rec.Name, dropped))
			}
			if len(rec.Values) == 0 {
				continue
			}
			if err := s.charge(b, resultCost(rec)); err != nil {
				return &FileError{File: file, Err: fmt.Errorf("benchmark results: %w", err)}
			}
			s.Bench = append(s.Bench, rec.Clone())
			n++
		case *benchfmt.SyntaxError:
			warn.add(rec.Error())
		}
	}
	s.Warnings = append(s.Warnings, warn.list()...)
	if err := rd.Err(); err != nil {
		return &FileError{File: file, Err: err}
	}
	for k, v := range rd.Units() {
		s.Units[k] = v
	}
	if n == 0 {
		return &FileError{File: file, Err: ErrNoBenchmarks}
	}
	return nil
}

// maxLine is the longest line, in bytes without its newline, that
// benchfmt's reader takes: its bufio.Scanner has the default buffer, and a
// longer line ends the whole file with "bufio.Scanner: token too long".
const maxLine = bufio.MaxScanTokenSize - 1

// blankLongLines empties each line of data longer than maxLine (a huge
// b.Log line in go test output; never a result), so that benchfmt reads
// the rest with its line numbers unchanged, and calls skipped for each.
// data is copied only when it has such a line.
func blankLongLines(data []byte, skipped func(line, n int)) []byte {
	var out []byte // nil until a long line is found
	line := 1
	for start := 0; start < len(data); line++ {
		end := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			end = start + i
		}
		switch {
		case end-start > maxLine:
			if out == nil {
				out = append(make([]byte, 0, len(data)), data[:start]...)
			}
			skipped(line, end-start)
		case out != nil:
			out = append(out, data[start:end]...)
		}
		if out != nil && end < len(data) {
			out = append(out, '\n')
		}
		start = end + 1
	}
	if out == nil {
		return data
	}
	return out
}

// dropNonFinite removes the NaN and infinite values of r, which `go test`
// prints for a b.ReportMetric that divides by zero: no statistic is
// defined over them (a NaN sent the U test into unbounded memory). It
// returns what it removed, "NaN hits/lookup, +Inf misses/hit", or "".
func dropNonFinite(r *benchfmt.Result) string {
	var dropped []string
	kept := r.Values[:0]
	for _, v := range r.Values {
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			unit := v.OrigUnit // as written, when benchfmt tidied it
			if unit == "" {
				unit = v.Unit
			}
			dropped = append(dropped, fmt.Sprintf("%+v %s", v.Value, unit))
			continue
		}
		kept = append(kept, v)
	}
	r.Values = kept
	return strings.Join(dropped, ", ")
}

// maxWarningsPerFile bounds the notes one file can add: a log of a million
// malformed lines must not become a million notes.
const maxWarningsPerFile = 20

// fileWarnings keeps the first maxWarningsPerFile warnings of a file and
// counts the rest.
type fileWarnings struct {
	file string
	kept []string
	more int
}

func (w *fileWarnings) add(s string) {
	if len(w.kept) < maxWarningsPerFile {
		w.kept = append(w.kept, s)
		return
	}
	w.more++
}

func (w *fileWarnings) list() []string {
	if w.more == 0 {
		return w.kept
	}
	return append(w.kept, fmt.Sprintf("%s: %d more problems like these not listed", w.file, w.more))
}

// readFile reads a whole regular file under the size cap, decompressing
// gzip (also under the cap), and charges the budget for the buffer it
// returns: charged is what to refund once the data is dropped. A FIFO,
// socket, device or kernel pseudo-file is refused with ErrNotRegular
// before anything is read. Errors are *FileError.
func readFile(file string, lim Limits) (data []byte, charged int64, err error) {
	data, charged, err = regfile.Read(file, lim.MaxFileBytes, lim.Budget)
	if err != nil {
		return nil, 0, &FileError{File: file, Err: unwrapPathError(err)}
	}
	if len(data) == 0 {
		return nil, charged, &FileError{File: file, Err: ErrEmpty}
	}
	if profdecode.IsGzip(data) {
		raw := charged
		data, charged, err = profdecode.GunzipCharged(data, lim.MaxFileBytes, lim.Budget)
		lim.Budget.Refund(raw)
		if err != nil {
			return nil, 0, &FileError{File: file, Err: err}
		}
		if len(data) == 0 {
			return nil, charged, &FileError{File: file, Err: fmt.Errorf("%w (after gunzip)", ErrEmpty)}
		}
	}
	return data, charged, nil
}

// recognise tells what decompressed file content is, and keeps the parsed
// profile so a profile is parsed once. Benchmark output is text with at
// least one "Benchmark<Name> <iterations> ..." line; a profile is anything
// profile.ParseData accepts (pprof protobuf, or pprof's legacy text
// formats); ELF files are executables. The profile is charged to
// lim.Budget: charged is what stays charged for it.
func recognise(data []byte, lim Limits) (k kind, p *profile.Profile, charged int64, err error) {
	if len(data) == 0 {
		return 0, nil, 0, ErrEmpty
	}
	if bytes.HasPrefix(data, []byte("\x7fELF")) {
		return kindExecutable, nil, 0, nil
	}
	if looksLikeBench(data) {
		return kindBench, nil, 0, nil
	}
	if looksLikeGoTest(data) {
		return 0, nil, 0, fmt.Errorf("%w: go test output without a Benchmark line (did -bench match any benchmark?)", ErrNoBenchmarks)
	}
	p, charged, err = parseProfile(data, lim)
	switch {
	case err == nil:
		return kindProfile, p, charged, nil
	case errors.Is(err, ErrNoSamples) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOverBudget) || errors.Is(err, ErrUnrecognized):
		return 0, nil, 0, err
	}
	return 0, nil, 0, notAProfile(data, err)
}

// notAProfile explains content that is neither benchmark output nor a
// profile. Binary content is taken for a broken pprof profile (protobuf,
// perhaps cut off inside its gzip), and so is text the parser recognised
// as one of pprof's legacy formats, with the parser's reason; other text
// is ErrUnrecognized. err is parseProfile's error.
func notAProfile(data []byte, err error) error {
	binary := !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0
	switch {
	case errors.Is(err, ErrNestedGzip):
	case binary && strings.Contains(err.Error(), "unrecognized profile format"):
		// ParseData tried the legacy text formats after the protobuf
		// decoder failed, and says only that none matched: ask the
		// decoder why.
		if _, perr := profile.ParseUncompressed(data); perr != nil {
			err = fmt.Errorf("parsing pprof: %w", perr)
		}
	case binary:
	case strings.Contains(err.Error(), "unrecognized profile format"):
		return ErrUnrecognized
	}
	return fmt.Errorf("%w: %w", ErrBadProfile, err)
}

// looksLikeBench reports whether data holds a benchmark result line the
// way the Go benchmark format defines it: "Benchmark", a name, then an
// iteration count followed by at least one value-unit pair. Lines of any
// length are read (a bufio.Scanner stopped at the first over its limit).
func looksLikeBench(data []byte) bool {
	for line := range bytes.Lines(data) {
		if !bytes.HasPrefix(line, []byte("Benchmark")) {
			continue
		}
		f := bytes.Fields(line)
		if len(f) >= 4 && isUint(string(f[1])) {
			return true
		}
	}
	return false
}

// looksLikeGoTest reports whether data is the text `go test` prints
// around results: a "PASS", "FAIL" or "ok  <pkg>" line, or benchfmt's
// "goos:" configuration line.
func looksLikeGoTest(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	// Line by line over the bytes: a copy of a file of hundreds of MB
	// (as a string, or split) would cost as much again, uncharged.
	for line := range bytes.Lines(data) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if string(line) == "PASS" || string(line) == "FAIL" || bytes.HasPrefix(line, []byte("ok  \t")) || bytes.HasPrefix(line, []byte("goos: ")) {
			return true
		}
	}
	return false
}

func isUint(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseProfile parses decompressed pprof data and checks it is usable:
// valid, within lim, and with at least one sample. It charges lim.Budget,
// before parsing, for what the profile will hold (profdecode.Decode);
// charged is what stays charged. Data that is not protobuf and too costly to try as pprof's
// legacy text formats is ErrUnrecognized, not a profile too large.
func parseProfile(data []byte, lim Limits) (*profile.Profile, int64, error) {
	if profdecode.IsGzip(data) {
		return nil, 0, fmt.Errorf("parsing pprof: %w", ErrNestedGzip)
	}
	p, cost, err := profdecode.Decode(data, profdecode.Limits{MaxBytes: lim.MaxFileBytes}, lim.Budget)
	if err != nil {
		if cost.Legacy && (errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOverBudget)) {
			return nil, 0, fmt.Errorf("%w (not protobuf: %v, as pprof's legacy text formats)", ErrUnrecognized, err)
		}
		return nil, 0, err
	}
	if len(p.Sample) == 0 {
		lim.Budget.Refund(cost.Memory())
		return nil, 0, ErrNoSamples
	}
	return p, cost.Memory(), nil
}
