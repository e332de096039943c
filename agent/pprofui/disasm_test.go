package pprofui

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestNoBinaryOpened: the disassembly view, and the assembly beside the
// Source view's lines, open no file a profile's mappings name. The mapping
// names a FIFO that nobody writes, which any open would hang on (pprof's
// own ObjTool did); a regular file would be read and disassembled the same
// way, whoever may read it.
func TestNoBinaryOpened(t *testing.T) {
	isolate(t)
	fifo := filepath.Join(t.TempDir(), "binary")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	o := load(t)
	i := find(t, o, observation.KindMutex, "pprof")
	for _, m := range o.Profiles[i].Profile.Mapping {
		m.File, m.BuildID = fifo, ""
	}
	srv := serve(t, o)
	client := &http.Client{Timeout: 60 * time.Second}
	for _, view := range []string{"/disasm?f=main", "/source?f=main%5C.contend"} {
		resp, err := client.Get(fmt.Sprintf("%s/profile/%d%s", srv.URL, i, view))
		if err != nil {
			t.Fatalf("GET %s: %v", view, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if view == "/disasm?f=main" && (resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "reads no binaries")) {
			t.Errorf("GET %s: %d %q, want 501 and why", view, resp.StatusCode, body)
		}
	}
}
