package relabel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// parse decodes a sink's YAML as agent/config does: strictly.
func parse(t *testing.T, text string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("decoding %q: %v", text, err)
	}
	return c
}

func mustNew(t *testing.T, text string) *Relabeler {
	t.Helper()
	r, err := New(parse(t, text))
	if err != nil {
		t.Fatalf("New(%q): %v", text, err)
	}
	return r
}

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// TestPrometheusCases runs the cases of Prometheus's own TestRelabel
// (github.com/prometheus/prometheus v0.315.0, model/relabel/relabel_test.go),
// written as the relabel_configs YAML a user writes, where a field left
// out takes Prometheus's default as there. Left out: the cases of label
// names the agent's backends refuse ("utf-8.label": TestConfigErrors has
// them as errors).
func TestPrometheusCases(t *testing.T) {
	abc := map[string]string{"a": "foo", "b": "bar", "c": "baz"}
	ports := map[string]string{"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}
	lines := map[string]string{"a": "line1\nline2", "b": "bar", "c": "baz"}
	for i, tc := range []struct {
		in    map[string]string
		rules string
		out   map[string]string // nil: dropped
	}{
		{abc, `
- source_labels: [a]
  regex: f(.*)
  target_label: d
  replacement: ch${1}-ch${1}
`, map[string]string{"a": "foo", "b": "bar", "c": "baz", "d": "choo-choo"}},
		{abc, `
- source_labels: [a, b]
  regex: f(.*);(.*)r
  target_label: a
  replacement: b${1}${2}m
- source_labels: [c, a]
  regex: (b).*b(.*)ba(.*)
  target_label: d
  replacement: $1$2$2$3
`, map[string]string{"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}},
		{map[string]string{"a": "foo"}, `
- {source_labels: [a], regex: .*o.*, action: drop}
- {source_labels: [a], regex: f(.*), target_label: d, replacement: ch$1-ch$1}
`, nil},
		{map[string]string{"a": "foo", "b": "bar"}, `
- {source_labels: [a], regex: .*o.*, action: drop}
`, nil},
		{map[string]string{"a": "abc"}, `
- {source_labels: [a], regex: .*(b).*, target_label: d, replacement: $1}
`, map[string]string{"a": "abc", "d": "b"}},
		{map[string]string{"a": "foo"}, `
- {source_labels: [a], regex: no-match, action: drop}
`, map[string]string{"a": "foo"}},
		// The regex is anchored: f|o matches neither all of "foo".
		{map[string]string{"a": "foo"}, `
- {source_labels: [a], regex: f|o, action: drop}
`, map[string]string{"a": "foo"}},
		{map[string]string{"a": "foo"}, `
- {source_labels: [a], regex: no-match, action: keep}
`, nil},
		{map[string]string{"a": "foo"}, `
- {source_labels: [a], regex: f.*, action: keep}
`, map[string]string{"a": "foo"}},
		// No replacement if there is no match.
		{map[string]string{"a": "boo"}, `
- {source_labels: [a], regex: f, target_label: b, replacement: bar}
`, map[string]string{"a": "boo"}},
		// A blank replacement deletes the label.
		{map[string]string{"a": "foo", "f": "baz"}, `
- {source_labels: [a], regex: (f).*, target_label: $1, replacement: $2}
`, map[string]string{"a": "foo"}},
		{abc, `
- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}
`, map[string]string{"a": "foo", "b": "bar", "c": "baz", "d": "976"}},
		{map[string]string{"a": "foo", "b1": "bar", "b2": "baz"}, `
- {regex: (b.*), replacement: "bar_${1}", action: labelmap}
`, map[string]string{"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"}},
		{map[string]string{"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"}, `
- {regex: __meta_(my.*), replacement: "${1}", action: labelmap}
`, map[string]string{"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc", "my_bar": "aaa", "my_baz": "bbb"}},
		{map[string]string{"a": "some-name-value"}, `
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${2}", target_label: "${1}"}
`, map[string]string{"a": "some-name-value", "name": "value"}},
		// An empty expansion deletes: there is no label "name" to delete.
		{map[string]string{"a": "some-name-value"}, `
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${3}", target_label: "${1}"}
`, map[string]string{"a": "some-name-value"}},
		// A target that expands to nothing is no label: skipped.
		{map[string]string{"a": "some-name-0"}, `
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}
- {source_labels: [a], regex: "some-([^-]+)(-[^,]+)", replacement: "${1}", target_label: "${3}"}
`, map[string]string{"a": "some-name-0"}},
		{map[string]string{"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar"}, `
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)path:(/[^,]+).*", replacement: "${1}", target_label: __metrics_path__}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)job:([^,]+).*", replacement: "${1}", target_label: job}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", replacement: "${2}", target_label: "${1}"}
`, map[string]string{"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar", "__metrics_path__": "/secret", "job": "some-job", "foo": "bar"}},
		// Prometheus issue 12283.
		{map[string]string{"__meta_kubernetes_pod_container_port_name": "foo", "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091"}, `
- {regex: ^__meta_kubernetes_pod_container_port_name$, action: labeldrop}
- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: (.+), replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: ^metrics$, action: keep}
`, map[string]string{"__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091", "__meta_kubernetes_pod_container_port_name": "metrics"}},
		{map[string]string{"a": "foo", "b1": "bar", "b2": "baz"}, `
- {regex: (b.*), action: labelkeep}
`, map[string]string{"b1": "bar", "b2": "baz"}},
		{map[string]string{"a": "foo", "b1": "bar", "b2": "baz"}, `
- {regex: (b.*), action: labeldrop}
`, map[string]string{"a": "foo"}},
		{map[string]string{"foo": "bAr123Foo"}, `
- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}
`, map[string]string{"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"}},
		{ports, `
- {source_labels: [__tmp_port], action: keepequal, target_label: __port1}
`, ports},
		{ports, `
- {source_labels: [__tmp_port], action: dropequal, target_label: __port1}
`, nil},
		{ports, `
- {source_labels: [__tmp_port], action: dropequal, target_label: __port2}
`, ports},
		{ports, `
- {source_labels: [__tmp_port], action: keepequal, target_label: __port2}
`, nil},
		// The regex matches across lines ((?s), as Prometheus anchors it).
		{lines, `
- {source_labels: [a], regex: line1.*line2, target_label: d, replacement: "match${1}"}
`, map[string]string{"a": "line1\nline2", "b": "bar", "c": "baz", "d": "match"}},
		{lines, `
- {source_labels: [a], regex: "(line1).*(?<second>line2)", target_label: "label1_${1}", replacement: "val_${second}"}
- {source_labels: [a], regex: "(line1).*(?<second>line2)", target_label: label2_$1, replacement: val_$second}
`, map[string]string{"a": "line1\nline2", "b": "bar", "c": "baz", "label1_line1": "val_line2", "label2_line1": "val_line2"}},
		{map[string]string{"__name__": "http_requests_total"}, `
- {source_labels: [__name__], regex: .*_total$, target_label: __type__, replacement: counter}
`, map[string]string{"__name__": "http_requests_total", "__type__": "counter"}},
		{map[string]string{"__name__": "disk_usage_bytes"}, `
- {source_labels: [__name__], regex: .*_bytes$, target_label: __unit__, replacement: bytes}
`, map[string]string{"__name__": "disk_usage_bytes", "__unit__": "bytes"}},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := mustNew(t, "relabel_configs:"+tc.rules)
			in := maps.Clone(tc.in)
			got, keep, reason := r.Apply(in, t0)
			if !maps.Equal(in, tc.in) {
				t.Errorf("Apply changed its input: %v", in)
			}
			if tc.out == nil {
				if keep || reason != ReasonDropped {
					t.Errorf("got %v, %v, %q; want dropped (%s)", got, keep, reason, ReasonDropped)
				}
				return
			}
			if !keep || !maps.Equal(got, tc.out) {
				t.Errorf("got %v, %v, %q; want %v", got, keep, reason, tc.out)
			}
		})
	}
}

// TestDefaults: a field left out is Prometheus's default, one given empty
// is empty.
func TestDefaults(t *testing.T) {
	in := map[string]string{"service_name": "shop", "env": "prod"}
	for _, tc := range []struct {
		rules string
		out   map[string]string
	}{
		// replace, (.*), $1, ";": copies the joined sources.
		{`[{source_labels: [service_name, env], target_label: job}]`,
			map[string]string{"service_name": "shop", "env": "prod", "job": "shop;prod"}},
		{`[{source_labels: [service_name, env], separator: "", target_label: job}]`,
			map[string]string{"service_name": "shop", "env": "prod", "job": "shopprod"}},
		// An explicit empty replacement deletes the target.
		{`[{source_labels: [env], target_label: env, replacement: ""}]`,
			map[string]string{"service_name": "shop"}},
		// A fixed value, set whatever the sources (none: "" matches (.*)).
		{`[{target_label: cluster, replacement: eu-1}]`,
			map[string]string{"service_name": "shop", "env": "prod", "cluster": "eu-1"}},
		// Action names are case-insensitive, as in Prometheus.
		{`[{source_labels: [env], regex: dev, action: Drop}]`, in},
	} {
		r := mustNew(t, "relabel_configs: "+tc.rules)
		got, keep, reason := r.Apply(in, t0)
		if !keep || !maps.Equal(got, tc.out) {
			t.Errorf("%s: got %v, %v, %q; want %v", tc.rules, got, keep, reason, tc.out)
		}
	}
}

// TestConfigErrors: a rule that cannot run, or that would write a label
// name a backend refuses, is an error of New naming the rule by index;
// every error is reported, each wraps ErrConfig.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{`relabel_configs: [{action: keep, regex: x}, {action: relabel}]`,
			[]string{`relabel_configs[1]: action "relabel": unknown`}},
		{`relabel_configs: [{source_labels: [a], regex: "f(", action: drop}]`,
			[]string{`relabel_configs[0]: regex "f(": error parsing regexp`}},
		{`relabel_configs: [{action: replace}]`,
			[]string{"relabel_configs[0]: relabel configuration for replace action requires 'target_label' value"}},
		// Names Prometheus's UTF-8 mode takes and the agent's backends do not.
		{`relabel_configs: [{source_labels: [a], target_label: utf-8.label}]`,
			[]string{`relabel_configs[0]: target_label "utf-8.label": not a label name`}},
		{`relabel_configs: [{source_labels: [a], regex: "(.*)", target_label: "0${1}"}]`,
			[]string{`relabel_configs[0]: target_label "0${1}": not a label name`}},
		{`relabel_configs: [{source_labels: [a], target_label: "-${3}"}]`,
			[]string{`relabel_configs[0]: target_label "-${3}": not a label name`}},
		{`relabel_configs: [{regex: "(.*)", replacement: "k8s-$1", action: labelmap}]`,
			[]string{`relabel_configs[0]: replacement "k8s-$1": labelmap would make names`}},
		{`relabel_configs: [{source_labels: [a], action: uppercase, target_label: "${1}"}]`,
			[]string{`relabel_configs[0]: target_label "${1}"`}},
		{`relabel_configs: [{source_labels: [utf-8.label], regex: x, action: keep}]`,
			[]string{`relabel_configs[0]: source_labels: "utf-8.label" is not a label name`}},
		{`relabel_configs: [{source_labels: [a], regex: x, action: labeldrop}]`,
			[]string{"relabel_configs[0]: labeldrop action requires only 'regex', and no other fields"}},
		{`relabel_configs: [{source_labels: [a], target_label: b, action: hashmod}]`,
			[]string{"relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus"}},
		// Every error at once, the caps' too.
		{`{max_series: -1, max_labels: 1000, relabel_configs: [{action: nope}, {action: keep}, {action: replace, target_label: "a b"}]}`,
			[]string{"max_series -1: want 1 to 100000", "max_labels 1000: want 1 to 256",
				"relabel_configs[0]: action", `relabel_configs[2]: target_label "a b"`}},
		{`max_series: 100001`, []string{"max_series 100001"}},
	} {
		_, err := New(parse(t, tc.yaml))
		if err == nil {
			t.Errorf("%s: no error", tc.yaml)
			continue
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v does not wrap ErrConfig", tc.yaml, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.yaml, err, w)
			}
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
			t.Errorf("%s: %d errors, want %d: %v", tc.yaml, n, len(tc.want), err)
		}
	}
	// A rule with a keep action and no regex is valid: keep matches "" against (.*).
	if _, err := New(parse(t, `relabel_configs: [{action: keep}]`)); err != nil {
		t.Errorf("keep with defaults: %v", err)
	}
}

// TestReservedSurvive: labelkeep leaves the labels the backends need
// unless its regex names them; labeldrop and replace remove them when
// told to.
func TestReservedSurvive(t *testing.T) {
	in := map[string]string{"service_name": "shop", "__name__": "process_cpu", "__delta__": "false", "env": "prod", "pod": "shop-1"}
	for _, tc := range []struct {
		rules string
		out   map[string]string
	}{
		{`[{regex: env, action: labelkeep}]`,
			map[string]string{"service_name": "shop", "__name__": "process_cpu", "__delta__": "false", "env": "prod"}},
		{`[{regex: pod|env, action: labeldrop}]`,
			map[string]string{"service_name": "shop", "__name__": "process_cpu", "__delta__": "false"}},
		{`[{regex: service_name, action: labeldrop}]`,
			map[string]string{"__name__": "process_cpu", "__delta__": "false", "env": "prod", "pod": "shop-1"}},
		{`[{regex: __delta__, action: labeldrop}, {target_label: service_name, replacement: ""}]`,
			map[string]string{"__name__": "process_cpu", "env": "prod", "pod": "shop-1"}},
		{`[{source_labels: [pod], regex: "(.*)-[0-9]+", target_label: service_name}]`,
			map[string]string{"service_name": "shop", "__name__": "process_cpu", "__delta__": "false", "env": "prod", "pod": "shop-1"}},
	} {
		r := mustNew(t, "relabel_configs: "+tc.rules)
		got, keep, reason := r.Apply(in, t0)
		if !keep || !maps.Equal(got, tc.out) {
			t.Errorf("%s: got %v, %v, %q; want %v", tc.rules, got, keep, reason, tc.out)
		}
	}
}

// TestRuntimeInvalid: what the rules make on a window that no backend
// takes drops the window, with a reason, instead of reaching it.
func TestRuntimeInvalid(t *testing.T) {
	r := mustNew(t, `relabel_configs: [{source_labels: [tag], regex: "(.*)=(.*)", target_label: "$1", replacement: "$2"}]`)
	for _, tc := range []struct {
		in     map[string]string
		reason string
	}{
		{map[string]string{"tag": "team=db"}, ""},
		{map[string]string{"tag": "team-name=db"}, ReasonInvalidName},
		{map[string]string{"tag": "9lives=db"}, ReasonInvalidName},
		{map[string]string{"tag": "team=" + strings.Repeat("x", MaxValueBytes-len("team="))}, ""},
		{map[string]string{"tag": "team=" + strings.Repeat("x", MaxValueBytes+1)}, ReasonInvalidValue},
		{map[string]string{"tag": "team=\xff"}, ReasonInvalidValue},
		{map[string]string{"bad name": "x"}, ReasonInvalidName},
	} {
		_, keep, reason := r.Apply(tc.in, t0)
		if keep != (tc.reason == "") || reason != tc.reason {
			t.Errorf("%q: kept %v, reason %q; want %q", tc.in, keep, reason, tc.reason)
		}
	}
}

// TestLabelCap: a set with more labels than max_labels after relabeling
// is dropped; relabeling can bring it under.
func TestLabelCap(t *testing.T) {
	in := map[string]string{"service_name": "shop", "a": "1", "b": "2"}
	r := mustNew(t, `max_labels: 2`)
	if _, keep, reason := r.Apply(in, t0); keep || reason != ReasonLabelLimit {
		t.Errorf("3 labels, max 2: kept %v, reason %q", keep, reason)
	}
	r = mustNew(t, "max_labels: 2\nrelabel_configs: [{regex: b, action: labeldrop}]")
	if got, keep, _ := r.Apply(in, t0); !keep || len(got) != 2 {
		t.Errorf("2 labels after labeldrop: kept %v, %v", keep, got)
	}
	// The default is Pyroscope's 30.
	r = mustNew(t, ``)
	big := map[string]string{}
	for i := range 31 {
		big[fmt.Sprintf("l%d", i)] = "v"
	}
	if _, keep, reason := r.Apply(big, t0); keep || reason != ReasonLabelLimit {
		t.Errorf("31 labels at the default: kept %v, reason %q", keep, reason)
	}
	delete(big, "l0")
	if _, keep, reason := r.Apply(big, t0); !keep {
		t.Errorf("30 labels at the default: dropped, %q", reason)
	}
}

// TestSeriesCap: past max_series active label sets a new set is dropped
// and the sets already active still pass; sets idle for SeriesTTL before
// the newest window make room; the sets remembered never exceed the cap.
func TestSeriesCap(t *testing.T) {
	const limit = 5
	r := mustNew(t, fmt.Sprintf("max_series: %d\nrelabel_configs: [{regex: pod, action: labeldrop}]", limit))
	set := func(i int) map[string]string {
		return map[string]string{"service_name": fmt.Sprint("svc", i), "pod": fmt.Sprint("p", i)}
	}
	for i := range limit {
		if _, keep, reason := r.Apply(set(i), t0); !keep {
			t.Fatalf("set %d of %d: dropped, %q", i, limit, reason)
		}
	}
	// pod is dropped by the rule: another pod of svc0 is the same series.
	if _, keep, _ := r.Apply(map[string]string{"service_name": "svc0", "pod": "other"}, t0); !keep {
		t.Error("an active series after relabeling was dropped")
	}
	dropped := 0
	for i := limit; i < 3*limit; i++ {
		if _, keep, reason := r.Apply(set(i), t0.Add(time.Duration(i)*time.Second)); !keep {
			if reason != ReasonSeriesLimit {
				t.Errorf("set %d: reason %q, want %q", i, reason, ReasonSeriesLimit)
			}
			dropped++
		}
		if n := r.Series(); n > limit {
			t.Fatalf("%d series remembered, cap %d", n, limit)
		}
	}
	if dropped != 2*limit {
		t.Errorf("%d new sets dropped past the cap, want %d", dropped, 2*limit)
	}
	// svc1..4 stay active while seen within the TTL; svc0 is refreshed.
	later := t0.Add(SeriesTTL / 2)
	if _, keep, _ := r.Apply(set(0), later); !keep {
		t.Error("an active series was dropped")
	}
	// An hour and a bit after t0: svc1..4 idle for more than SeriesTTL
	// before the newest window are forgotten, svc0 (seen at t0+30m) not.
	after := t0.Add(SeriesTTL + time.Minute)
	for i := 100; i < 104; i++ {
		if _, keep, reason := r.Apply(set(i), after); !keep {
			t.Errorf("new set %d after the others went idle: dropped, %q", i, reason)
		}
	}
	if _, keep, _ := r.Apply(set(104), after); keep {
		t.Error("a sixth active set was kept")
	}
	if _, keep, _ := r.Apply(set(0), after); !keep {
		t.Error("svc0, active within the TTL, was dropped")
	}
	if n := r.Series(); n != limit {
		t.Errorf("%d series remembered, want %d", n, limit)
	}
	// Windows sent newest first: an older window of an active set passes
	// and does not age it.
	if _, keep, _ := r.Apply(set(100), t0); !keep {
		t.Error("an older window of an active set was dropped")
	}
}

// TestYAMLRoundTrip: a Config written back as YAML (what --check-config
// prints) reads back to the same rules, empty strings included.
func TestYAMLRoundTrip(t *testing.T) {
	text := `relabel_configs:
  - source_labels: [service_name, env]
    separator: ""
    regex: (.*);prod
    target_label: tier
    replacement: ""
  - regex: __meta_(.+)
    action: labelmap
max_series: 100
`
	c := parse(t, text)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(c); err != nil {
		t.Fatal(err)
	}
	back := parse(t, b.String())
	if fmt.Sprintf("%#v", deref(back)) != fmt.Sprintf("%#v", deref(c)) {
		t.Errorf("round trip:\n%s\nread back as %#v, want %#v", b.String(), deref(back), deref(c))
	}
	if *c.RelabelConfigs[0].Separator != "" || *c.RelabelConfigs[0].Replacement != "" || c.RelabelConfigs[1].Separator != nil {
		t.Errorf("empty and absent fields not told apart: %#v", deref(c))
	}
}

// deref spells a Config's rules with their pointers' values.
func deref(c Config) []string {
	var s []string
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%q", *p)
	}
	for _, r := range c.RelabelConfigs {
		s = append(s, fmt.Sprintf("%v %s %s %d %q %s %q", r.SourceLabels, str(r.Separator), str(r.Regex), r.Modulus, r.TargetLabel, str(r.Replacement), r.Action))
	}
	return append(s, fmt.Sprint(c.MaxSeries, c.MaxLabels))
}

// TestUnknownField: a misspelled field of a rule is an error of a strict
// decoder (agent/config's), not a rule with a default in its place.
func TestUnknownField(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader("relabel_configs: [{source_labels: [a], targetlabel: b}]"))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "targetlabel") {
		t.Errorf("decoding a rule with targetlabel: %v", err)
	}
}

// BenchmarkApply: one window's labels (8, as the agent sets them)
// through three rules and the caps, the set already active.
func BenchmarkApply(b *testing.B) {
	r, err := New(Config{RelabelConfigs: []Rule{
		{SourceLabels: []string{"service_name"}, Regex: ptr("test-.*"), Action: "drop"},
		{SourceLabels: []string{"unit"}, Regex: ptr(`(.*)\.service`), TargetLabel: "systemd_unit"},
		{Regex: ptr("unit|exe"), Action: "labeldrop"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]string{"service_name": "shop", "__name__": "process_cpu", "host": "web-1", "version": "v1.2.3",
		"unit": "shop.service", "exe": "/opt/shop/bin/shop", "build_id": "0123456789abcdef", "env": "prod"}
	for b.Loop() {
		if _, keep, reason := r.Apply(in, t0); !keep {
			b.Fatal(reason)
		}
	}
}

func ptr(s string) *string { return &s }
