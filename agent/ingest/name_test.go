package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestParseNameRefuses checks that a name is parsed the way the Pyroscope
// SDKs build it and refused, with a reason, where it could be read two
// ways or would make an unbounded label set.
func TestParseNameRefuses(t *testing.T) {
	many := "app{"
	for i := range maxLabels + 1 {
		many += fmt.Sprintf("k%d=v,", i)
	}
	many += "}"
	for _, tc := range []struct{ name, reason string }{
		{"a\x00b", "application name"},
		{"a=b", "application name"},
		{"a}", "application name"},
		{"a b{x=1}", "application name"},
		{"app{x=1}tail", "after the labels"},
		{"app{x=1}}", "after the labels"},
		{"app{x=}1}", "after the labels"},
		{"app{x=a{b}", "label x"},
		{"app{x=\x00}", "label x"},
		{"app{x=\xff}", "UTF-8"},
		{"app{a\x00b=1}", "label name"},
		{"app{a-b=1}", "label name"},
		{"app{x=1,x=2}", "twice"},
		{"app{__name__=other}", "reserved"},
		{"app{" + strings.Repeat("k", maxLabelName+1) + "=1}", "longer"},
		{"app{x=" + strings.Repeat("v", maxLabelValue+1) + "}", "longer"},
		{strings.Repeat("a", maxLabelValue+1), "longer"},
		{many, "labels"},
	} {
		if app, labels, err := ParseName(tc.name); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ParseName(%.40q) = %.40q with %d labels, %v; want an error saying %q", tc.name, app, len(labels), err, tc.reason)
		}
	}
}

// TestTargetKeyUnambiguous checks that no application name or label can
// be read as another target's: the key encodes every part with its length.
func TestTargetKeyUnambiguous(t *testing.T) {
	type target struct {
		app    string
		labels map[string]string
	}
	targets := []target{
		{"a", map[string]string{"b": "c"}},
		{"a\x00b=c", nil},
		{"a", map[string]string{"b": "c\x00d=e"}},
		{"a", map[string]string{"b": "c", "d": "e"}},
		{"a", map[string]string{"b=c\x00d": "e"}},
		{"a\x00", map[string]string{"b": "c"}},
		{"a", map[string]string{"": ""}},
		{"a", nil},
	}
	seen := map[string]int{}
	for i, tg := range targets {
		k := targetKey(tg.app, tg.labels)
		if j, ok := seen[k]; ok {
			t.Errorf("targets %d %+v and %d %+v share the key %q", j, targets[j], i, tg, k)
		}
		seen[k] = i
	}
}

// TestHostileNamesOverHTTP pushes names that the old parser read as
// another application's labels: each is refused with 400 and a reason,
// and the real application's observation holds only its own push.
func TestHostileNamesOverHTTP(t *testing.T) {
	var recv Receiver
	base := serve(t, NewHandler(Options{Sink: recv.Receive}), nil)
	post := func(name string) (int, string) {
		resp, err := http.Post(base+"/ingest?name="+url.QueryEscape(name), "", bytes.NewReader(cpuProfileBytes(t, true)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	if code, msg := post("shop{env=prod}"); code != 200 {
		t.Fatalf("a good push: %d %s", code, msg)
	}
	for _, name := range []string{"shop\x00env=prod", "shop{env=prod\x00}", "shop{env=prod}}", "shop{env=prod,env=prod}"} {
		if code, msg := post(name); code != 400 || !strings.Contains(msg, "name") {
			t.Errorf("push as %q: %d %q, want 400 naming the problem", name, code, msg)
		}
	}
	obs := recv.Drain()
	if len(obs) != 1 || len(obs[0].Profiles) != 1 {
		n := 0
		if len(obs) > 0 {
			n = len(obs[0].Profiles)
		}
		t.Errorf("%d targets, the first with %d profiles; want shop{env=prod} alone with its one push", len(obs), n)
	}
}
