// Package input recognises what a user hands to perfhound by its content,
// not its name: Go benchmark output (the format golang.org/x/perf/benchfmt
// reads) and pprof profiles (gzipped or not). Directories are walked, so a
// folder that `go test -bench -count N -cpuprofile` filled can be passed as is.
//
// Every file is read under a size cap, gzip included, so a huge or
// malicious input costs a bounded amount of memory and ends in a *FileError
// that names the file. Executables (the pkg.test binary that -cpuprofile
// leaves behind) are skipped and reported, because Go profiles already
// carry their symbols.
package input

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"golang.org/x/perf/benchfmt"

	"github.com/perfhound/perfhound/analyzer/internal/par"
	"github.com/perfhound/perfhound/analyzer/internal/regfile"
)

// Sentinel problems a FileError can wrap; test them with errors.Is.
var (
	ErrEmpty        = errors.New("empty file")
	ErrTooLarge     = regfile.ErrTooLarge
	ErrNotRegular   = regfile.ErrNotRegular
	ErrUnrecognized = errors.New("neither Go benchmark output nor a pprof profile")
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

// Limits bounds what one file may cost.
type Limits struct {
	// MaxFileBytes caps a file's size on disk and, for gzip, its
	// decompressed size.
	MaxFileBytes int64
}

// DefaultLimits allows 256 MiB a file: far above a real CPU profile
// (a few MB) or benchmark log, far below this machine's memory.
var DefaultLimits = Limits{MaxFileBytes: 256 << 20}

// Kind is what a file was recognised as.
type Kind int

const (
	KindBench Kind = iota + 1
	KindProfile
	KindExecutable
)

func (k Kind) String() string {
	switch k {
	case KindBench:
		return "benchmark output"
	case KindProfile:
		return "pprof profile"
	case KindExecutable:
		return "executable"
	}
	return "unknown"
}

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
		lim = DefaultLimits
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
	par.Do(len(files), func(i int) {
		one := &Set{Units: benchfmt.UnitMetadataMap{}}
		errs[i] = one.add(files[i], lim)
		loaded[i] = one
	})
	set := &Set{Paths: paths, Units: benchfmt.UnitMetadataMap{}, Skipped: skipped}
	for i, one := range loaded {
		if errs[i] != nil {
			return nil, errs[i]
		}
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
	data, err := ReadFile(src.path, lim)
	if src.walked && errors.Is(err, ErrNotRegular) {
		s.Skipped = append(s.Skipped, skipNote(src.path, errors.Unwrap(err)))
		return nil
	}
	if err != nil {
		return err
	}
	return s.addData(src.path, data)
}

// addData sorts one file's (decompressed) content into the set.
func (s *Set) addData(file string, data []byte) error {
	kind, p, err := recognise(data)
	if err != nil {
		return &FileError{File: file, Err: err}
	}
	switch kind {
	case KindExecutable:
		s.Skipped = append(s.Skipped, file+": executable, skipped (profiles carry their own symbols)")
	case KindBench:
		return s.addBench(file, data)
	case KindProfile:
		s.Profiles = append(s.Profiles, Profile{File: file, Profile: p})
	}
	return nil
}

func (s *Set) addBench(file string, data []byte) error {
	rd := benchfmt.NewReader(bytes.NewReader(data), file)
	n := 0
	for rd.Scan() {
		switch rec := rd.Result().(type) {
		case *benchfmt.Result:
			s.Bench = append(s.Bench, rec.Clone())
			n++
		case *benchfmt.SyntaxError:
			s.Warnings = append(s.Warnings, rec.Error())
		}
	}
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

// ReadFile reads a whole regular file under the size cap, decompressing
// gzip (also under the cap). A FIFO, socket, device or kernel pseudo-file
// is refused with ErrNotRegular before anything is read. Errors are
// *FileError.
func ReadFile(file string, lim Limits) ([]byte, error) {
	data, err := regfile.Read(file, lim.MaxFileBytes)
	if err != nil {
		return nil, &FileError{File: file, Err: unwrapPathError(err)}
	}
	if len(data) == 0 {
		return nil, &FileError{File: file, Err: ErrEmpty}
	}
	if isGzip(data) {
		data, err = gunzip(data, lim.MaxFileBytes)
		if err != nil {
			return nil, &FileError{File: file, Err: err}
		}
		if len(data) == 0 {
			return nil, &FileError{File: file, Err: fmt.Errorf("%w (after gunzip)", ErrEmpty)}
		}
	}
	return data, nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

func gunzip(data []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompressing gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		// io.ErrUnexpectedEOF is the usual symptom of a cut-off download.
		return nil, fmt.Errorf("decompressing gzip (truncated?): %w", err)
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("%w: decompresses past %d bytes", ErrTooLarge, max)
	}
	return out, nil
}

// Detect tells what decompressed file content is. Benchmark output is
// text with at least one "Benchmark<Name> <iterations> ..." line; a profile
// is anything profile.ParseData accepts (pprof protobuf, or pprof's legacy
// text formats); ELF files are executables.
func Detect(data []byte) (Kind, error) {
	k, _, err := recognise(data)
	return k, err
}

// recognise is Detect that keeps the parsed profile, so a profile is
// parsed once.
func recognise(data []byte) (Kind, *profile.Profile, error) {
	if len(data) == 0 {
		return 0, nil, ErrEmpty
	}
	if bytes.HasPrefix(data, []byte("\x7fELF")) {
		return KindExecutable, nil, nil
	}
	if looksLikeBench(data) {
		return KindBench, nil, nil
	}
	if looksLikeGoTest(data) {
		return 0, nil, fmt.Errorf("%w: go test output without a Benchmark line (did -bench match any benchmark?)", ErrNoBenchmarks)
	}
	p, err := ParseProfile(data)
	if err == nil {
		return KindProfile, p, nil
	}
	if errors.Is(err, ErrNoSamples) {
		return 0, nil, err
	}
	return 0, nil, ErrUnrecognized
}

// looksLikeBench reports whether data holds a benchmark result line the
// way the Go benchmark format defines it: "Benchmark", a name, then an
// iteration count followed by at least one value-unit pair.
func looksLikeBench(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("Benchmark")) {
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 4 {
			continue
		}
		if isUint(f[1]) {
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
	for _, line := range strings.Split(string(data), "\n") {
		if line == "PASS" || line == "FAIL" || strings.HasPrefix(line, "ok  \t") || strings.HasPrefix(line, "goos: ") {
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

// ErrNestedGzip is a profile still gzipped after one decompression:
// pprof's parser would inflate the inner layer without any bound, so a
// few kilobytes could take gigabytes.
var ErrNestedGzip = errors.New("gzip inside gzip")

// DecodeProfile parses a pprof profile, gzipped or not, decompressing it
// at most once and within max bytes. It does not require samples (an
// endpoint may serve an empty profile); ParseProfile does.
func DecodeProfile(data []byte, max int64) (*profile.Profile, error) {
	if isGzip(data) {
		var err error
		if data, err = gunzip(data, max); err != nil {
			return nil, err
		}
	}
	if isGzip(data) {
		return nil, fmt.Errorf("parsing pprof: %w", ErrNestedGzip)
	}
	// ParseData validates what it decodes (Profile.CheckValid), so a
	// profile that parses is well-formed.
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("parsing pprof: %w", err)
	}
	return p, nil
}

// ParseProfile parses decompressed pprof data and checks it is usable:
// valid, and with at least one sample.
func ParseProfile(data []byte) (*profile.Profile, error) {
	if isGzip(data) {
		return nil, fmt.Errorf("parsing pprof: %w", ErrNestedGzip)
	}
	// ParseData validates what it decodes (Profile.CheckValid), so a
	// profile that parses is well-formed.
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("parsing pprof: %w", err)
	}
	if len(p.Sample) == 0 {
		return nil, ErrNoSamples
	}
	return p, nil
}
