// Package gosym reads Go function names as profiles carry them: the
// import path of a function's package, and whether that path is the
// standard library's. The verdict, the HTML report (through the verdict)
// and the profile diff decide from these what is library code; what each
// then counts as library is its own rule, said where it is decided.
package gosym

import "strings"

// Package is the import path of the Go function named fn: "crypto/sha256"
// of "crypto/sha256.block", "github.com/x/y" of "github.com/x/y.(*T).M[...]"
// (a generic's type arguments, which may hold paths of their own, are not
// read). It is "" for a name that is no Go function's: one without a dot
// after its last slash (C's "write", "expandAVX512_60"), and C++ and JIT
// symbols ("std::sort", "JS:*hot /app/x.js:1:17",
// "Interpreted:main.py"), which carry spaces or colons no Go path has. A
// C symbol with a compiler's suffix ("_int_malloc.constprop.0") reads as
// package _int_malloc: callers that see C frames tell them first, by
// their mapping or their profile.
func Package(fn string) string {
	if i := strings.IndexByte(fn, '['); i >= 0 {
		fn = fn[:i]
	}
	if strings.ContainsAny(fn, " :") {
		return ""
	}
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot <= 0 {
		return ""
	}
	return fn[:slash+1+dot]
}

// IsStd tells an import path of the standard library or the runtime: its
// first element has no dot (golang.org/ref/mod#module-path). main is the
// program's, and "" (no Go function) is not the standard library's.
func IsStd(pkg string) bool {
	if pkg == "" || pkg == "main" {
		return false
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

// RuntimePrefix begins the name of every function of the Go runtime's
// package ("runtime.mallocgc"); runtime/pprof's and runtime/internal's
// functions have a slash instead.
const RuntimePrefix = "runtime."

// IsRuntime tells a function of the Go runtime's package.
func IsRuntime(fn string) bool { return strings.HasPrefix(fn, RuntimePrefix) }
