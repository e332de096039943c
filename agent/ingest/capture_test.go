package ingest

import (
	"flag"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var capture = flag.Bool("capture", false, "rewrite testdata/sdk-*.http from a run of fixtures/pyroapp")

// TestCaptureSDKPush records what the real pyroscope-go SDK sends: the
// first CPU and the first heap push of fixtures/pyroapp, as raw HTTP
// requests, the seeds of FuzzIngest. Run with -capture to rewrite them:
//
//	go test ./agent/ingest -run CaptureSDKPush -capture
func TestCaptureSDKPush(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to rewrite testdata/sdk-*.http")
	}
	bin := buildPyroapp(t)
	var mu sync.Mutex
	got := map[string][]byte{}
	var recv Receiver
	h := recv.Handler(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server("")
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true)
		if err != nil {
			t.Error(err)
		}
		// pyroapp pushes CPU profiles and heap profiles, which alone
		// come with a sample_type_config naming inuse_space.
		kind := "cpu"
		if strings.Contains(string(dump), "inuse_space") {
			kind = "heap"
		}
		mu.Lock()
		if got[kind] == nil {
			got[kind] = dump
		}
		mu.Unlock()
		r.Body = readCloser{strings.NewReader(string(dump[strings.Index(string(dump), "\r\n\r\n")+4:]))}
		h.ServeHTTP(w, r)
	})
	go srv.Serve(ln)
	defer srv.Close()
	if out, err := exec.Command(bin, "-server", "http://"+ln.Addr().String(), "-duration", "2s").CombinedOutput(); err != nil {
		t.Fatalf("pyroapp: %v\n%s", err, out)
	}
	for _, kind := range []string{"cpu", "heap"} {
		if got[kind] == nil {
			t.Fatalf("no %s push captured", kind)
		}
		if err := os.WriteFile(filepath.Join("testdata", "sdk-"+kind+".http"), got[kind], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
