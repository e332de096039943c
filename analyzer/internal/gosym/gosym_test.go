package gosym

import "testing"

// TestPackage pins the import path read off function names as the
// profiles of fixtures/observations and compare's corpus hold them, and
// names that are no Go function's.
func TestPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"crypto/sha256.block":                                     "crypto/sha256",
		"compress/flate.(*compressor).deflate":                    "compress/flate",
		"internal/runtime/syscall/linux.Syscall6":                 "internal/runtime/syscall/linux",
		"runtime.gcBgMarkWorker.func2":                            "runtime",
		"strings.Index":                                           "strings",
		"main.main":                                               "main",
		"github.com/klauspost/compress/zstd.(*Encoder).EncodeAll": "github.com/klauspost/compress/zstd",
		"gopkg.in/yaml%2ev3.unmarshal":                            "gopkg.in/yaml%2ev3",
		"slices.SortFunc[go.shape.struct { Name string }]":        "slices",
		"sync.(*Map[...]).Load":                                   "sync",
		"example.com/m.F[go.shape.*net/http.Request]":             "example.com/m",
		"write":                                   "",
		"expandAVX512_60":                         "",
		"_int_malloc.constprop.0":                 "_int_malloc",
		"operator new(unsigned long)":             "",
		"std::vector<int>::push_back(int const&)": "",
		"JS:*hot /app/x.js:1:17":                  "",
		"Interpreted:main.py":                     "",
		"[unknown]":                               "",
		".hidden":                                 "",
		"":                                        "",
	} {
		if got := Package(fn); got != want {
			t.Errorf("Package(%q) = %q, want %q", fn, got, want)
		}
	}
}

// TestIsStd pins which import paths are the standard library's.
func TestIsStd(t *testing.T) {
	for pkg, want := range map[string]bool{
		"runtime": true, "strings": true, "crypto/sha256": true, "internal/poll": true, "net/http": true,
		"cmd/compile/internal/ssa": true, "main": false, "": false,
		"github.com/klauspost/compress/zstd": false, "golang.org/x/sys/unix": false, "example.com/m": false,
	} {
		if got := IsStd(pkg); got != want {
			t.Errorf("IsStd(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// TestIsRuntime pins the runtime's functions: its package's, not its
// subpackages'.
func TestIsRuntime(t *testing.T) {
	for fn, want := range map[string]bool{
		"runtime.mallocgc": true, "runtime.gcBgMarkWorker.func2": true, "runtime/pprof.profileWriter": false,
		"runtime/internal/syscall.Syscall6": false, "main.runtime": false, "internal/runtime/syscall/linux.Syscall6": false,
	} {
		if got := IsRuntime(fn); got != want {
			t.Errorf("IsRuntime(%q) = %v", fn, got)
		}
	}
}
