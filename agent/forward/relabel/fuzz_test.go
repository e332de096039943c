package relabel

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FuzzRelabel: any sink YAML that New accepts, applied to any labels,
// never panics, and what it keeps is what a backend takes: valid names
// and values, at most max_labels of them; what it drops has one of
// Reasons.
func FuzzRelabel(f *testing.F) {
	f.Add("relabel_configs: [{source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}'}]", "a=foo,b=bar")
	f.Add("relabel_configs: [{regex: '(b.*)', replacement: 'x_$1', action: labelmap}]\nmax_labels: 3", "a=1,b1=2,b2=3")
	f.Add("relabel_configs: [{regex: env, action: labelkeep}]", "service_name=shop,__name__=process_cpu,env=prod,pod=x")
	f.Add("relabel_configs: [{source_labels: [t], regex: '(.*)=(.*)', target_label: '$1', replacement: '$2'}]", "t=a-b=c")
	f.Add("relabel_configs: [{source_labels: [a], target_label: b, action: hashmod, modulus: 7}]\nmax_series: 1", "a=1")
	f.Fuzz(func(t *testing.T, text, pairs string) {
		var c Config
		if yaml.Unmarshal([]byte(text), &c) != nil {
			return
		}
		if len(c.RelabelConfigs) > 20 {
			return
		}
		r, err := New(c)
		if err != nil {
			return
		}
		in := map[string]string{}
		for kv := range strings.SplitSeq(pairs, ",") {
			k, v, _ := strings.Cut(kv, "=")
			in[k] = v
		}
		out, keep, reason := r.Apply(in, t0)
		if !keep {
			if out != nil || !slices.Contains(Reasons, reason) {
				t.Fatalf("dropped with %v, reason %q", out, reason)
			}
			return
		}
		if reason != "" || len(out) > r.maxLabels {
			t.Fatalf("kept %d labels (max %d), reason %q", len(out), r.maxLabels, reason)
		}
		for k, v := range out {
			if !ValidName(k) || len(v) > MaxValueBytes || !utf8.ValidString(v) {
				t.Fatalf("kept %q=%q", k, v)
			}
		}
	})
}
