package profdiff

import (
	"strings"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/internal/gosym"
)

// A frame is "library" when a regression inside it is better blamed on the
// code that called it: Go's standard library and runtime (packages whose
// first path element has no dot, other than main), code in shared objects,
// the kernel and the vDSO. Everything else (the module under test and its
// third-party dependencies, or a C program's own executable) is first-party.
// A function's "own" cost is its flat cost plus the library code below it
// that no deeper first-party frame owns.

// isGoStd reports whether a Go package path belongs to the standard library
// or the runtime (gosym.IsStd), cmd/... excepted: that is the Go
// toolchain's own code, which no other program can import: it appears
// only in profiles of the toolchain, where it is the program under study.
func isGoStd(pkg string) bool {
	return gosym.IsStd(pkg) && !strings.HasPrefix(pkg, "cmd/")
}

// isUnderTest reports whether pkg is one of the packages being benchmarked
// or its external test package.
func isUnderTest(pkg string, underTest []string) bool {
	pkg = strings.TrimSuffix(pkg, "_test")
	for _, u := range underTest {
		if pkg == u {
			return true
		}
	}
	return false
}

// isGoProfile reports whether p holds Go code: a function in a .go file, or
// a runtime function. Only then are Go package rules applied to names (a C
// symbol such as "foo.cold" must not read as package foo).
func isGoProfile(p *profile.Profile) bool {
	for _, f := range p.Function {
		if strings.HasSuffix(f.Filename, ".go") || gosym.IsRuntime(f.Name) {
			return true
		}
	}
	return false
}

// goRoot returns the source root of the Go distribution that built p
// ("/usr/local/go/src/"), read off the file of a runtime function, or "".
// Assembly helpers of the runtime carry names with no package
// ("expandAVX512_60") but live there.
func goRoot(p *profile.Profile) string {
	for _, f := range p.Function {
		if gosym.IsRuntime(f.Name) {
			if i := strings.LastIndex(f.Filename, "/src/runtime/"); i >= 0 {
				return f.Filename[:i+len("/src/")]
			}
		}
	}
	return ""
}

// isLibraryMapping reports whether m is a shared object, the kernel or a
// special mapping rather than the main executable.
func isLibraryMapping(m *profile.Mapping) bool {
	if m == nil {
		return false
	}
	f := m.File
	base := f[strings.LastIndexByte(f, '/')+1:]
	return strings.HasPrefix(f, "[") || strings.Contains(base, ".so") || m.KernelRelocationSymbol != ""
}

// benchmarkOf returns the name of the Go benchmark function a frame belongs
// to, such as "BenchmarkParse" for "example.com/p.BenchmarkParse.func1", and
// its package, or "" when the frame is not inside a benchmark function.
// Go's testing package runs functions named Benchmark followed by a
// character that is not a lower-case letter.
func benchmarkOf(name string) (pkg, bench string) {
	pkg = gosym.Package(name)
	if pkg == "" {
		return "", ""
	}
	rest := name[len(pkg)+1:]
	if !strings.HasPrefix(rest, "Benchmark") {
		return "", ""
	}
	ident := rest
	if i := strings.IndexAny(ident, ".[("); i >= 0 {
		ident = ident[:i]
	}
	if len(ident) > len("Benchmark") {
		c := ident[len("Benchmark")]
		if c >= 'a' && c <= 'z' {
			return "", ""
		}
	}
	return pkg, ident
}
