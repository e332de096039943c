package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/agent/forward/relabel"

	"go.yaml.in/yaml/v3"

	"github.com/perfhound/perfhound/bpf"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default does not validate: %v", err)
	}
	want := Config{
		DataDir:  "/var/lib/perfhound",
		Listen:   "127.0.0.1:7474",
		Window:   Duration(10 * time.Second),
		Interval: Duration(10 * time.Second),
		EBPF:     EBPF{Enabled: true, Frequency: bpf.AgentFrequency, OffCPUSampling: bpf.AgentOffCPUSampling, NativeUnwind: true},
		Retention: Retention{
			MaxAge:  Duration(7 * 24 * time.Hour),
			MaxSize: Size(2 << 30),
			Rollups: []Rollup{{Duration(6 * time.Hour), Duration(time.Minute)}, {Duration(48 * time.Hour), Duration(10 * time.Minute)}},
		},
		Ingest: Ingest{Enabled: true, MaxMemory: DefaultIngestMemory},
		Regressions: Regressions{Enabled: true, MinShare: 0.01, FDR: 0.01, MinChange: 0.05, BaseWindow: Duration(30 * time.Minute),
			Boost:   Boost{Frequency: 99, Duration: Duration(5 * time.Minute), MaxPerHour: Duration(15 * time.Minute)},
			Webhook: Webhook{Timeout: Duration(10 * time.Second), MaxAttempts: 5}},
		LogLevel: "info",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v\nwant %+v", c, want)
	}
	// No file, an empty one, or one of comments: the defaults.
	for _, text := range []string{"", "\n", "# nothing yet\n", "---\n", "~\n"} {
		got, err := Parse([]byte(text))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, %v; want the defaults", text, got, err)
		}
	}
	// Default gives fresh slices: a caller's change does not leak.
	c.Retention.Rollups[0].Step = 1
	if Default().Retention.Rollups[0].Step != Duration(time.Minute) {
		t.Error("Default's rollups are shared")
	}
}

// TestEveryKeyRoundTrips loads a file setting every key to something
// else than its default, checks every value, writes it back and reads
// it again.
func TestEveryKeyRoundTrips(t *testing.T) {
	const file = "testdata/every-key.yaml"
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	dur := func(s string) Duration {
		v, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := Config{
		DataDir:   "/srv/perfhound",
		Listen:    "0.0.0.0:9999",
		TokenFile: "/etc/perfhound/token",
		TLS:       TLS{CertFile: "/etc/perfhound/tls.crt", KeyFile: "/etc/perfhound/tls.key"},
		Window:    dur("30s"),
		Interval:  dur("2s"),
		EBPF:      EBPF{Enabled: false, Frequency: 49, OffCPUSampling: 8, NativeUnwind: false},
		Retention: Retention{
			MaxAge:  dur("72h"),
			MaxSize: 500 << 20,
			Rollups: []Rollup{{dur("12h"), dur("5m")}, {dur("48h"), dur("30m")}, {dur("60h"), dur("1h")}},
		},
		Services: []ServiceRule{{
			Service: "checkout", Version: "1.2", Exe: "/opt/shop/bin/checkout*", Cmdline: `^checkout --port \d+`,
			Cgroup: "/system.slice/checkout-*.service", Unit: "checkout*.service", Container: "shop-checkout-*",
		}},
		GoServices: []GoService{{URL: "http://127.0.0.1:6060", Service: "api", Version: "v3.1.0", Labels: map[string]string{"team": "payments"}, RequestsMetric: "http_requests_total"}},
		Ingest:     Ingest{Enabled: false, MaxMemory: 64 << 20},
		Regressions: Regressions{Enabled: false, MinShare: 0.02, FDR: 0.001, MinChange: 0.1, BaseWindow: dur("1h"),
			Boost: Boost{Frequency: 199, Duration: dur("3m"), MaxPerHour: dur("10m")}, Webhook: Webhook{
				URL: "https://alerts.example.com/perfhound", TokenFile: "/etc/perfhound/webhook-token",
				Timeout: dur("30s"), MaxAttempts: 8,
			}},
		Forward: Forward{Sinks: []Sink{{
			Name: "grafana", Type: "pyroscope", URL: "https://profiles.example.com", Protocol: "grpc", Tenant: "team-a",
			IngestionWindow: dur("30m"), Timeout: dur("10s"),
			BasicAuth: BasicAuth{Username: "12345", PasswordFile: "/etc/perfhound/pyroscope-password"},
			TLS:       SinkTLS{CAFile: "/etc/perfhound/ca.pem", CertFile: "/etc/perfhound/client.pem", KeyFile: "/etc/perfhound/client.key"},
			Relabel: relabel.Config{RelabelConfigs: []relabel.Rule{{
				SourceLabels: []string{"service_name", "env"}, Separator: ptr("/"), Regex: ptr("(.*)/prod"),
				TargetLabel: "team", Replacement: ptr("$1"), Action: "replace",
			}}, MaxSeries: 500, MaxLabels: 20},
		}}},
		Labels:   map[string]string{"env": "prod", "region": "eu-west-1"},
		LogLevel: "debug",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load(%s) =\n%+v\nwant\n%+v", file, c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// The file must set every key, each away from its default, or a key
	// could be added without this test reading it.
	text, _ := os.ReadFile(file)
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, keys := range keysByLine(&doc) {
		for _, k := range keys {
			written[index.ReplaceAllString(k.path, "[]")] = true
		}
	}
	for _, k := range Keys() {
		if !written[k] {
			t.Errorf("%s does not set %s", file, k)
		}
	}
	notDefault(t, "", reflect.ValueOf(c), reflect.ValueOf(Default()))

	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil || !reflect.DeepEqual(again, c) {
		t.Errorf("written and read back:\n%s\n= %+v, %v", out, again, err)
	}
}

// notDefault fails for every field of got equal to the default's.
func notDefault(t *testing.T, path string, got, def reflect.Value) {
	t.Helper()
	if got.Kind() != reflect.Struct {
		if reflect.DeepEqual(got.Interface(), def.Interface()) {
			t.Errorf("%s is at its default: the test would not see it ignored", path)
		}
		return
	}
	for i := range got.NumField() {
		notDefault(t, path+"."+got.Type().Field(i).Name, got.Field(i), def.Field(i))
	}
}

func TestUnknownKey(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"window: 10s\ntsl:\n  cert_file: x\n", "line 2: tsl: unknown key (the top level has data_dir, listen, token_file, tls, window, interval, ebpf, retention, services, go_services, ingest, regressions, forward, labels, log_level)"},
		{"tls:\n  cert: /x\n", "line 2: tls.cert: unknown key (tls has cert_file, key_file)"},
		{"retention:\n  rollups:\n    - after: 6h\n      step: 1m\n    - after: 48h\n      stepp: 10m\n", "line 6: retention.rollups[1].stepp: unknown key (retention.rollups[] has after, step)"},
		{"retention: {rollups: [{after: 6h, steps: 1m}]}\n", "line 1: retention.rollups[0].steps: unknown key"},
		{"services:\n  - service: a\n    binary: /bin/a\n", "line 3: services[0].binary: unknown key (services[] has service, version, exe, cmdline, cgroup, unit, container)"},
		{"ebpf:\n  enabled: true\n  frequncy: 99\n", "line 3: ebpf.frequncy: unknown key"},
	} {
		_, err := Parse([]byte(c.text))
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q):\n got %v\nwant %s", c.text, err, c.want)
		}
	}
	// Every unknown key is named, not only the first.
	_, err := Parse([]byte("a: 1\nwindow: 10s\nb: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1: a: unknown key") || !strings.Contains(err.Error(), "line 3: b: unknown key") {
		t.Errorf("two unknown keys: %v", err)
	}
}

func TestBadValues(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"window: 10x\n", `line 1: window: "10x" is not a duration`},
		{"window: 10\n", `line 1: window: "10" is not a duration`},
		{"window: [10s]\n", `line 1: window: want a duration`},
		{"retention:\n  max_size: 2 gigs\n", `line 2: retention.max_size: "2 gigs" is not a size`},
		{"retention:\n  max_age: -1d\n", `line 2: retention.max_age: "-1d" is not a duration`},
		{"ebpf:\n  frequency: many\n", `line 2: ebpf.frequency: want a whole number, not str "many"`},
		{"ebpf: {enabled: yes please}\n", `line 1: ebpf.enabled: want true or false`},
		{"labels: [a, b]\n", `line 1: labels: want a mapping of names to values`},
		{"tls: /etc/cert\n", `line 1: tls: want a mapping of keys`},
		{"window: 10s\n---\nwindow: 20s\n", "more than one YAML document"},
		{"window: 10s\n  listen: x\n", "not YAML"},
		{"services: {a: b}\n", "line 1: services: want a list"},
	} {
		_, err := Parse([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q):\n got %v\nwant %s", c.text, err, c.want)
		}
	}
}

func TestUnits(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "1m30s": 90 * time.Second, "6h": 6 * time.Hour, "7d": 7 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "0d": 0, "250ms": 250 * time.Millisecond,
	} {
		got, err := ParseDuration(s)
		if err != nil || time.Duration(got) != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, time.Duration(got), err, want)
		}
		if back, err := ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("%q written as %q reads %v, %v", s, got.String(), back, err)
		}
	}
	for _, s := range []string{"", "10", "d", "7dd", "-7d", "+7d", "1e3d", "7d-1h", "7d 1h", "infd", "0x10d", "1y", "99999999999d"} {
		if got, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, got)
		}
	}
	for d, want := range map[Duration]string{
		Duration(7 * 24 * time.Hour): "7d", Duration(6 * time.Hour): "6h", Duration(time.Minute): "1m",
		Duration(90 * time.Second): "1m30s", Duration(36 * time.Hour): "36h", Duration(0): "0s",
	} {
		if d.String() != want {
			t.Errorf("%v.String() = %q, want %q", time.Duration(d), d.String(), want)
		}
	}
	for s, want := range map[string]int64{
		"2GiB": 2 << 30, "500MiB": 500 << 20, "64KiB": 64 << 10, "1TiB": 1 << 40, "1GB": 1e9, "3MB": 3e6,
		"2KB": 2000, "1TB": 1e12, "1024": 1024, "12B": 12, "1.5GiB": 3 << 29, "2 GiB": 2 << 30, "0": 0,
	} {
		got, err := ParseSize(s)
		if err != nil || int64(got) != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("%q written as %q reads %d, %v", s, got.String(), back, err)
		}
	}
	for _, s := range []string{"", "GiB", "2gib", "2G", "-1", "1e9", "2 gigs", "9999999TiB", "0x10", "Inf", "NaN", "1.5"} {
		if got, err := ParseSize(s); err == nil && s != "1.5" {
			t.Errorf("ParseSize(%q) = %d, want an error", s, got)
		}
	}
	if Size(2<<30).String() != "2GiB" || Size(1e9).String() != "1000000000B" || Size(1536).String() != "1536B" {
		t.Errorf("Size.String: %s %s %s", Size(2<<30), Size(1e9), Size(1536))
	}
}

// TestValidate: each invalid value is one error, naming its key.
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		key, want string
		set       func(*Config)
	}{
		{"data_dir", "missing", func(c *Config) { c.DataDir = "" }},
		{"listen", "missing", func(c *Config) { c.Listen = "" }},
		{"listen", "is not host:port", func(c *Config) { c.Listen = "127.0.0.1" }},
		{"listen", `port "http" is not a number`, func(c *Config) { c.Listen = "127.0.0.1:http" }},
		{"listen", `port "70000" is not a number`, func(c *Config) { c.Listen = "127.0.0.1:70000" }},
		{"listen", "needs an absolute path", func(c *Config) { c.Listen = "unix:agent.sock" }},
		{"token_file", "a token is required when listening on 0.0.0.0:7474: set token_file", func(c *Config) { c.Listen = "0.0.0.0:7474" }},
		{"token_file", "a token is required when listening on :7474: set token_file", func(c *Config) { c.Listen = ":7474" }},
		{"token_file", "a token is required when listening on myhost:7474", func(c *Config) { c.Listen = "myhost:7474" }},
		{"tls.key_file", "missing: tls.cert_file is set", func(c *Config) { c.TLS.CertFile = "/c" }},
		{"tls.cert_file", "missing: tls.key_file is set", func(c *Config) { c.TLS.KeyFile = "/k" }},
		{"tls", "over a Unix socket", func(c *Config) { c.Listen = "unix:/run/a.sock"; c.TLS = TLS{"/c", "/k"} }},
		{"window", "500ms is shorter than 1s", func(c *Config) { c.Window = Duration(500 * time.Millisecond) }},
		{"window", "2h is longer than 1h", func(c *Config) { c.Window = Duration(2 * time.Hour); c.Retention.Rollups = nil }},
		{"interval", "500ms is shorter than 1s", func(c *Config) { c.Interval = Duration(500 * time.Millisecond) }},
		{"interval", "20s is longer than window 10s", func(c *Config) { c.Interval = Duration(20 * time.Second) }},
		{"ebpf.frequency", "0 Hz is out of range 1..1000", func(c *Config) { c.EBPF.Frequency = 0 }},
		{"ebpf.frequency", "5000 Hz is out of range", func(c *Config) { c.EBPF.Frequency = 5000 }},
		{"ebpf.offcpu_sampling", "0 is out of range 1..1000", func(c *Config) { c.EBPF.OffCPUSampling = 0 }},
		{"retention.max_age", "keeps less than one window", func(c *Config) { c.Retention.MaxAge = Duration(time.Second); c.Retention.Rollups = nil }},
		{"retention.max_size", "1MiB is less than 16MiB", func(c *Config) { c.Retention.MaxSize = 1 << 20 }},
		{"retention.rollups[1].after", "6h is not after the previous rollup's 6h", func(c *Config) { c.Retention.Rollups[1].After = Duration(6 * time.Hour) }},
		{"retention.rollups[0].after", "0s is not after", func(c *Config) { c.Retention.Rollups[0].After = 0 }},
		{"retention.rollups[1].after", "8d is not before retention.max_age 7d", func(c *Config) { c.Retention.Rollups[1].After = Duration(8 * 24 * time.Hour) }},
		{"retention.rollups[0].step", "5s is not longer than the windows it merges (10s)", func(c *Config) { c.Retention.Rollups[0].Step = Duration(5 * time.Second) }},
		{"retention.rollups[0].step", "15s is not a whole number of the windows it merges (10s)", func(c *Config) { c.Retention.Rollups[0].Step = Duration(15 * time.Second) }},
		{"retention.rollups[1].step", "1m30s is not a whole number of the windows it merges (1m)", func(c *Config) { c.Retention.Rollups[1].Step = Duration(90 * time.Second) }},
		{"services[0]", `service "": empty`, func(c *Config) { c.Services = []ServiceRule{{Exe: "/bin/x"}} }},
		{"services[0]", "matches nothing", func(c *Config) { c.Services = []ServiceRule{{Service: "x"}} }},
		{"services[1]", `exe "/bin/[x": syntax error in pattern`, func(c *Config) {
			c.Services = []ServiceRule{{Service: "a", Unit: "a.service"}, {Service: "x", Exe: "/bin/[x"}}
		}},
		{"services[0]", `cmdline "(java": error parsing regexp`, func(c *Config) { c.Services = []ServiceRule{{Service: "x", Cmdline: "(java"}} }},
		{"go_services[0].url", "missing", func(c *Config) { c.GoServices = []GoService{{Service: "a"}} }},
		{"go_services[0].url", "want an http:// or https:// URL", func(c *Config) { c.GoServices = []GoService{{URL: "127.0.0.1:6060", Service: "a"}} }},
		{"go_services[1].url", "is go_services[0]'s already", func(c *Config) {
			c.GoServices = []GoService{{URL: "http://h:1", Service: "a"}, {URL: "http://h:1", Service: "b"}}
		}},
		{"go_services[0].service", "missing", func(c *Config) { c.GoServices = []GoService{{URL: "http://h:1"}} }},
		{"go_services[0].labels.a-b", "not allowed", func(c *Config) {
			c.GoServices = []GoService{{URL: "http://h:1", Service: "a", Labels: map[string]string{"a-b": "x"}}}
		}},
		{"go_services[0].requests_metric", "is not a Prometheus metric name", func(c *Config) {
			c.GoServices = []GoService{{URL: "http://h:1", Service: "a", RequestsMetric: "http-requests"}}
		}},
		{"ingest.max_memory", "1MiB cannot hold one pushed body", func(c *Config) { c.Ingest.MaxMemory = 1 << 20 }},
		{"labels.my label", `' ' is not allowed`, func(c *Config) { c.Labels = map[string]string{"my label": "x"} }},
		{"labels.__tenant__", "reserved", func(c *Config) { c.Labels = map[string]string{"__tenant__": "x"} }},
		{"labels.service_name", "set by the agent for each service", func(c *Config) { c.Labels = map[string]string{"service_name": "x"} }},
		{"labels.version", "set by the agent for each service", func(c *Config) { c.Labels = map[string]string{"version": "1"} }},
		{"labels.env", "not allowed in a value", func(c *Config) { c.Labels = map[string]string{"env": "a}b"} }},
		{"labels", "31 labels, at most 30", func(c *Config) {
			c.Labels = map[string]string{}
			for i := range 31 {
				c.Labels[string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "v"
			}
		}},
		{"log_level", `"verbose" is none of debug, info, warn, error`, func(c *Config) { c.LogLevel = "verbose" }},
		{"regressions.webhook.url", "want an http:// or https:// URL with a host", func(c *Config) { c.Regressions.Webhook.URL = "alerts:9093/hook" }},
		{"regressions.webhook.url", "want an http:// or https:// URL with a host", func(c *Config) { c.Regressions.Webhook.URL = "https:///hook" }},
		{"regressions.webhook.token_file", "set without regressions.webhook.url", func(c *Config) { c.Regressions.Webhook.TokenFile = "/t" }},
		{"regressions.webhook.timeout", "0s is out of range 1s..5m", func(c *Config) { c.Regressions.Webhook.Timeout = 0 }},
		{"regressions.webhook.timeout", "1h is out of range", func(c *Config) { c.Regressions.Webhook.Timeout = Duration(time.Hour) }},
		{"regressions.webhook.max_attempts", "0 is out of range 1..20", func(c *Config) { c.Regressions.Webhook.MaxAttempts = 0 }},
		{"regressions.webhook.max_attempts", "21 is out of range 1..20", func(c *Config) { c.Regressions.Webhook.MaxAttempts = 21 }},
		{"regressions.min_share", "0 is out of range 0.001..0.5", func(c *Config) { c.Regressions.MinShare = 0 }},
		{"regressions.boost.frequency", "1001 is out of range 0..1000", func(c *Config) { c.Regressions.Boost.Frequency = 1001 }},
		{"regressions.boost.duration", "30s is out of range 1m..1h", func(c *Config) { c.Regressions.Boost.Duration = Duration(30 * time.Second) }},
		{"regressions.boost.max_per_hour", "2h is out of range 0s..1h", func(c *Config) { c.Regressions.Boost.MaxPerHour = Duration(2 * time.Hour) }},
		{"regressions.fdr", "0.5 is out of range 0.0001..0.2", func(c *Config) { c.Regressions.FDR = 0.5 }},
		{"regressions.min_change", "NaN is out of range 0.01..1", func(c *Config) { c.Regressions.MinChange = math.NaN() }},
		{"regressions.base_window", "1m is out of range 5m..1d", func(c *Config) { c.Regressions.BaseWindow = Duration(time.Minute) }},
	} {
		cfg := Default()
		c.set(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s (%s): Validate = %v, want ErrInvalid", c.key, c.want, err)
			continue
		}
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != c.key || !strings.Contains(ke.Msg, c.want) {
			t.Errorf("Validate = %v\nwant %s: ...%s...", err, c.key, c.want)
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
			t.Errorf("%s: %d errors, want 1: %v", c.key, n, err)
		}
	}
	// Disabled ingest does not need memory; every error at once.
	cfg := Default()
	cfg.Ingest = Ingest{Enabled: false}
	if err := cfg.Validate(); err != nil {
		t.Errorf("ingest off, no memory: %v", err)
	}
	cfg.DataDir, cfg.LogLevel = "", "loud"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "data_dir: missing\nlog_level:") {
		t.Errorf("two errors: %v", err)
	}
}

// TestToken: a non-loopback listen needs a token; loopback names and
// Unix sockets do not (webauth.LocalAddr).
func TestToken(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:7474", "[::1]:7474", "localhost:7474", "unix:/run/perfhound/agent.sock"} {
		c := Default()
		c.Listen = listen
		if err := c.Validate(); err != nil {
			t.Errorf("listen %s without a token: %v", listen, err)
		}
	}
	c := Default()
	c.Listen = "0.0.0.0:7474"
	const want = "token_file: a token is required when listening on 0.0.0.0:7474: set token_file"
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Validate = %v, want %s", err, want)
	}
	c.TokenFile = "/etc/perfhound/token"
	if err := c.Validate(); err != nil {
		t.Errorf("with a token: %v", err)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o644)
	c := Default()
	c.TokenFile = token
	if err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "token_file: token file "+token+" is readable by other users") {
		t.Errorf("token readable by others: %v", err)
	}
	os.Chmod(token, 0o600)
	if err := c.CheckFiles(); err != nil {
		t.Errorf("good token: %v", err)
	}
	c.Regressions.Webhook = Webhook{URL: "https://alerts.example.com/x", TokenFile: filepath.Join(dir, "none")}
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "regressions.webhook.token_file: reading the token") {
		t.Errorf("missing webhook token: %v", err)
	}
	c.Regressions.Webhook.TokenFile = token
	c.TLS = TLS{filepath.Join(dir, "cert"), filepath.Join(dir, "key")}
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "tls: ") {
		t.Errorf("missing TLS files: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte("data_dir: data\ntoken_file: ./token\nlisten: 127.0.0.1:1\nregressions:\n  webhook:\n    url: http://127.0.0.1:9093/\n    token_file: hook-token\n"), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// Relative paths are the file's directory's; the rest stays default.
	want := Default()
	want.DataDir, want.TokenFile, want.Listen = filepath.Join(dir, "data"), filepath.Join(dir, "token"), "127.0.0.1:1"
	want.Regressions.Webhook.URL, want.Regressions.Webhook.TokenFile = "http://127.0.0.1:9093/", filepath.Join(dir, "hook-token")
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v\nwant %+v", c, want)
	}
	// Errors name the file.
	os.WriteFile(path, []byte("windw: 10s\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), "config "+path+": line 1: windw: unknown key") {
		t.Errorf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of no file: %v", err)
	}
	os.WriteFile(path, []byte(strings.Repeat("#", maxFileBytes+1)), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a huge file: %v", err)
	}
}

func TestOverrides(t *testing.T) {
	c := Default()
	if got := c.Apply(Overrides{}); !reflect.DeepEqual(got, c) {
		t.Errorf("Apply of nothing changed %+v", got)
	}
	dir, listen, token, level := "/d", "0.0.0.0:1", "/t", "debug"
	window, interval, ebpf, freq := 20*time.Second, 2*time.Second, false, 49
	got := c.Apply(Overrides{&dir, &listen, &token, &window, &interval, &ebpf, &freq, &level})
	want := c
	want.DataDir, want.Listen, want.TokenFile, want.LogLevel = dir, listen, token, level
	want.Window, want.Interval, want.EBPF.Enabled, want.EBPF.Frequency = Duration(window), Duration(interval), false, 49
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Apply = %+v\nwant %+v", got, want)
	}
	// A window of no length is Validate's to refuse, not a division by
	// zero (FuzzAgentCheckConfig found --window=0).
	for _, w := range []time.Duration{0, -time.Second} {
		got := c.Apply(Overrides{Window: &w})
		if !slices.Equal(got.Retention.Rollups, c.Retention.Rollups) || got.Validate() == nil {
			t.Errorf("--window %v: rollups %v, Validate %v", w, got.Retention.Rollups, got.Validate())
		}
	}
	// Every field of Overrides is applied (a new one must be).
	if n := reflect.TypeFor[Overrides]().NumField(); n != 8 {
		t.Errorf("Overrides has %d fields; this test sets 8", n)
	}
}

func TestNeedsRestart(t *testing.T) {
	a := Default()
	b := Default()
	b.Window, b.LogLevel, b.Labels = Duration(time.Minute), "debug", map[string]string{"env": "x"}
	b.Retention.MaxAge = Duration(time.Hour * 24)
	b.Services = []ServiceRule{{Service: "a", Unit: "a.service"}}
	if got := NeedsRestart(a, b); len(got) != 0 {
		t.Errorf("reloadable changes need a restart: %v", got)
	}
	b.Listen, b.EBPF.Frequency, b.Interval = "127.0.0.1:1", 99, Duration(time.Second)
	if got, want := NeedsRestart(a, b), []string{"listen", "interval", "ebpf"}; !slices.Equal(got, want) {
		t.Errorf("NeedsRestart = %v, want %v", got, want)
	}
	for _, k := range Reloadable {
		if !slices.Contains(Keys(), k) {
			t.Errorf("Reloadable names %s, not a key", k)
		}
	}
}

// TestExampleFile: the documented example loads, validates, and is the
// defaults it says it is; every key is in it, if only in a comment.
func TestExampleFile(t *testing.T) {
	const file = "../../docs/agent.example.yaml"
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	def := Default()
	def.Services, def.GoServices, def.Labels = []ServiceRule{}, []GoService{}, map[string]string{}
	def.Forward.Sinks = []Sink{}
	if !reflect.DeepEqual(c, def) {
		t.Errorf("%s is not the defaults:\n%+v\nwant\n%+v", file, c, def)
	}
	text, _ := os.ReadFile(file)
	for _, k := range Keys() {
		leaf := k[strings.LastIndexAny(k, ".")+1:]
		if !regexp.MustCompile(`(?m)^[#\s-]*` + regexp.QuoteMeta(leaf) + `:`).Match(text) {
			t.Errorf("%s does not mention %s", file, k)
		}
	}
}

// TestDocumentedKeys: docs/agent.md's configuration reference has a row
// for every key, and no row for a key that is not.
func TestDocumentedKeys(t *testing.T) {
	text, err := os.ReadFile("../../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(text), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("docs/agent.md has no \"## Configuration reference\" section")
	}
	ref, _, _ = strings.Cut(ref, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(ref, -1) {
		documented = append(documented, m[1])
	}
	keys := Keys()
	for _, k := range keys {
		if !slices.Contains(documented, k) {
			t.Errorf("docs/agent.md does not document %s", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("docs/agent.md documents %s, which is not a key", k)
		}
	}
	if len(documented) != len(keys) {
		t.Errorf("%d rows for %d keys (one row each)", len(documented), len(keys))
	}
}

// --window alone keeps the default rollups that still merge its windows,
// so that `perfhound agent --window 1m` starts; rollups from a file are
// left to Validate.
func TestWindowFitsDefaultRollups(t *testing.T) {
	minute := time.Minute
	c := Default().Apply(Overrides{Window: &minute})
	if err := c.Validate(); err != nil {
		t.Fatalf("--window 1m on the defaults: %v", err)
	}
	if len(c.Retention.Rollups) != 1 || c.Retention.Rollups[0].Step != Duration(10*time.Minute) {
		t.Errorf("rollups %v, want the 10 min tier alone", c.Retention.Rollups)
	}
	own := Default()
	own.Retention.Rollups = []Rollup{{After: Duration(time.Hour), Step: Duration(time.Minute)}}
	if err := own.Apply(Overrides{Window: &minute}).Validate(); err == nil {
		t.Errorf("a rollup the user wrote that merges nothing was accepted")
	}
}

func ptr[T any](v T) *T { return &v }
