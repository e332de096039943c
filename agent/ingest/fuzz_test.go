package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfhound/perfhound/analyzer/profdecode"
	"github.com/perfhound/perfhound/internal/testprof"
)

// sdkPush reads a push the real SDK sent (testdata/sdk-*.http, written by
// TestCaptureSDKPush): its query, content type, body, and the profile
// part decompressed.
func sdkPush(t testing.TB, name string) (query, contentType string, body, profile []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if body, err = io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	_, params, _ := strings.Cut(r.Header.Get("Content-Type"), "boundary=")
	mr := multipart.NewReader(bytes.NewReader(body), params)
	for {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("%s: no profile part: %v", name, err)
		}
		if part.FormName() == "profile" {
			gz, _ := io.ReadAll(part)
			if profile, err = profdecode.Gunzip(gz, 1<<20); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	return r.URL.RawQuery, r.Header.Get("Content-Type"), body, profile
}

// wrapProfile makes the multipart body the SDK would send for profile.
func wrapProfile(profile []byte) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, _ := w.CreateFormFile("profile", "profile.pprof")
	fw.Write(profile)
	fw, _ = w.CreateFormFile("sample_type_config", "sample_type_config.json")
	fw.Write([]byte(`{"inuse_space":{"units":"bytes","aggregation":"average","display-name":"inuse_space_bytes"}}`))
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// FuzzIngest drives a Receiver's handler, as the agent serves it, with
// fuzzed queries, content types and bodies (wrap: the body is a profile,
// sent in the SDK's multipart form), each pushed twice: every answer must
// be one of the documented statuses, the budget must never be overdrawn,
// every accepted push must be held or counted as dropped, and once
// drained nothing may stay charged.
func FuzzIngest(f *testing.F) {
	for _, name := range []string{"sdk-cpu.http", "sdk-heap.http"} {
		q, ct, body, prof := sdkPush(f, name)
		f.Add(q, ct, body, false)
		f.Add(q, "", prof, true)
		f.Add(q, "", prof, false)
		f.Add(q+"&format=pprof", "binary/octet-stream", testprof.GzipBest(prof), false)
	}
	f.Add("name=app%00x%3Dy", "", testprof.ManySamples(1), false)
	f.Add("name=app{a=1,a=2}&from=1&until=0", "", testprof.ManySamples(1), false)
	f.Add("name=app&format=jfr", "", testprof.ManySamples(1), false)
	f.Add("name=bomb", "", testprof.GzipBest(testprof.ManySamples(100_000)), false)
	f.Add("name=bomb", "", testprof.GzipBest(testprof.GzipBest(testprof.ManySamples(10))), true)
	f.Add("name=locs", "", testprof.ManyLocations(20_000), true)
	f.Add("name=app", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nabc\r\n--x--\r\n"), false)

	f.Fuzz(pushTwice)
}

// pushTwice is FuzzIngest's check of one input.
func pushTwice(t *testing.T, query, contentType string, body []byte, wrap bool) {
	if wrap {
		contentType, body = wrapProfile(body)
	}
	recv := Receiver{MaxMemory: 4 << 20}
	h := recv.Handler(Options{
		MaxBodyBytes: 1 << 20,
		Limits:       profdecode.Limits{MaxBytes: 1 << 20, MaxSamples: 20_000, MaxLocations: 20_000, MaxMemory: 2 << 20},
	})
	accepted := 0
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, "/ingest?"+query, bytes.NewReader(body))
		if err != nil {
			t.Skip("not a URL a server would pass on:", err)
		}
		req.RemoteAddr = "192.0.2.1:4040"
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if _, ok := statuses[w.Code]; !ok {
			t.Fatalf("status %d (%q) is not one of the documented ones", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			accepted++
		} else if !strings.HasPrefix(w.Body.String(), "ingest: ") {
			t.Fatalf("refusal %d without a reason: %q", w.Code, w.Body)
		}
		if used, max := recv.Budget().Used(), recv.Budget().Max(); used > max {
			t.Fatalf("budget overdrawn: %d of %d", used, max)
		}
	}
	held, dropped := 0, 0
	for _, o := range recv.Drain() {
		held += len(o.Profiles)
		for _, m := range o.Missing {
			var n int
			if _, err := fmt.Sscanf(m.Reason, "dropped the oldest %d", &n); err != nil {
				t.Fatalf("missing: %q", m.Reason)
			}
			dropped += n
		}
	}
	if held+dropped != accepted || accepted > 0 && held == 0 {
		t.Fatalf("%d pushes accepted, %d held and %d dropped", accepted, held, dropped)
	}
	if used := recv.Budget().Used(); used != 0 {
		t.Fatalf("%d bytes still charged after Drain", used)
	}
}
