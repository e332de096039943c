// Package config is perfhound agent's configuration: one YAML file (every
// key documented in docs/agent.md, an example in docs/agent.example.yaml)
// over built-in defaults, with the command's flags over both. Decoding is
// strict: a key the agent does not know is an error naming it and its
// line, never silently ignored (a misspelt retention key would otherwise
// keep data forever). Validate says everything wrong at once, each error
// naming its key, so that `perfhound agent --check-config` is one round.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/perfhound/perfhound/analyzer/regress"
	"github.com/perfhound/perfhound/bpf"
)

// Config is the agent's whole configuration.
type Config struct {
	// DataDir holds the store (perfhound.db).
	DataDir string `yaml:"data_dir"`
	// Listen is the HTTP API's address: host:port, or unix:/path.
	Listen string `yaml:"listen"`
	// TokenFile holds the API's bearer token (first line, mode 0600);
	// required when Listen is not loopback or a Unix socket.
	TokenFile string `yaml:"token_file"`
	TLS       TLS    `yaml:"tls"`
	// Window is how much time each stored observation covers.
	Window Duration `yaml:"window"`
	// Interval is the time between two readings of /proc, /sys and PSI.
	Interval  Duration  `yaml:"interval"`
	EBPF      EBPF      `yaml:"ebpf"`
	Retention Retention `yaml:"retention"`
	// Services name processes: the first rule that matches gives the
	// service (and the version, when set).
	Services []ServiceRule `yaml:"services"`
	// GoServices are Go services whose net/http/pprof endpoints are
	// scraped every window.
	GoServices []GoService `yaml:"go_services"`
	Ingest     Ingest      `yaml:"ingest"`
	// Regressions configures regression detection and where its findings
	// go besides the API, the log and /metrics.
	Regressions Regressions `yaml:"regressions"`
	// Forward sends the stored windows on to a fleet's backends.
	Forward Forward `yaml:"forward"`
	// Labels are added to every stored profile (as Pyroscope's external
	// labels, e.g. env: prod).
	Labels map[string]string `yaml:"labels"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// TLS, when both files are set, serves the API over HTTPS.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled says whether the API is served over TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// EBPF configures the eBPF collectors (bpf.Options).
type EBPF struct {
	Enabled bool `yaml:"enabled"`
	// Frequency is on-CPU sampling per CPU, in Hz (bpf.Options.Frequency).
	Frequency int `yaml:"frequency"`
	// OffCPUSampling follows one switch-out in this many
	// (bpf.Options.OffCPUSampling); 1 follows all of them.
	OffCPUSampling int `yaml:"offcpu_sampling"`
	// NativeUnwind walks user stacks by .eh_frame tables where a
	// process's code has them (bpf.Options.NativeUnwind): C and C++
	// built without frame pointers get their callers.
	NativeUnwind bool `yaml:"native_unwind"`
}

// Retention bounds the store by age and size, and says how older windows
// are merged into coarser ones.
type Retention struct {
	MaxAge  Duration `yaml:"max_age"`
	MaxSize Size     `yaml:"max_size"`
	Rollups []Rollup `yaml:"rollups"`
}

// Rollup merges the windows older than After into one per Step.
type Rollup struct {
	After Duration `yaml:"after"`
	Step  Duration `yaml:"step"`
}

// GoService is a Go service's net/http/pprof base URL and its name.
type GoService struct {
	URL     string `yaml:"url"`
	Service string `yaml:"service"`
	// Version, when set, overrides the version found for the service.
	Version string            `yaml:"version"`
	Labels  map[string]string `yaml:"labels"`
	// RequestsMetric, when set, is the counter of the service's requests
	// in its Prometheus text at /metrics (e.g. http_requests_total),
	// summed over its label sets: regression detection then compares a
	// function's CPU per request, not only its share of the service's.
	RequestsMetric string `yaml:"requests_metric"`
}

// Ingest configures the Pyroscope-compatible /ingest endpoint.
type Ingest struct {
	Enabled bool `yaml:"enabled"`
	// MaxMemory bounds what pushed profiles hold until a window takes
	// them (ingest.Receiver.MaxMemory).
	MaxMemory Size `yaml:"max_memory"`
}

// Regressions configures the regression detector (analyzer/regress) the
// daemon feeds every stored window.
type Regressions struct {
	Enabled bool `yaml:"enabled"`
	// MinShare: functions under this share of the service's CPU on both
	// sides (a version comparison) or in the reference and the block (a
	// drift) are not tested.
	MinShare float64 `yaml:"min_share"`
	// FDR is the false discovery rate: of a deployment's version
	// comparison over its looks, and of a drift screen at one block.
	FDR float64 `yaml:"fdr"`
	// MinChange is the least rise, relative to the expected cost, that
	// is a finding.
	MinChange float64 `yaml:"min_change"`
	// BaseWindow is how much of the previous version's last windows a
	// new version is compared with.
	BaseWindow Duration `yaml:"base_window"`
	// Boost samples the host faster while a service's new version is in
	// its first minutes.
	Boost   Boost   `yaml:"boost"`
	Webhook Webhook `yaml:"webhook"`
}

// Boost is the sampling rate for a fresh deploy: the version comparison
// needs samples, and the first minutes after a deploy are when a
// finding is worth the most. The whole host is sampled faster (one
// perf event per CPU), so its cost is bounded by MaxPerHour.
type Boost struct {
	// Frequency is the on-CPU rate while a new version of any service is
	// younger than Duration; 0, or not above ebpf.frequency: no boost.
	Frequency int      `yaml:"frequency"`
	Duration  Duration `yaml:"duration"`
	// MaxPerHour bounds the boosted time in any hour: a host where
	// something deploys all the time samples at ebpf.frequency most of it.
	MaxPerHour Duration `yaml:"max_per_hour"`
}

// Webhook is where each regression raised or resolved is posted
// (agent/notify); no URL, no webhook.
type Webhook struct {
	URL string `yaml:"url"`
	// TokenFile holds the bearer token sent to it (first line, mode 0600).
	TokenFile string `yaml:"token_file"`
	// Timeout bounds each request.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts bounds the tries of one event.
	MaxAttempts int `yaml:"max_attempts"`
}

// The defaults, and why.
const (
	DefaultDataDir = "/var/lib/perfhound"
	// DefaultListen is loopback only, so no token is needed; 7474 is free
	// of the anchors' ports (Parca 7071, Alloy 12345, Pyroscope 4040).
	DefaultListen = "127.0.0.1:7474"
	// DefaultWindow: the window; short enough that kill -9 loses
	// little, long enough that a window at 19 Hz holds ~190 samples a CPU.
	DefaultWindow = Duration(10 * time.Second)
	// DefaultInterval: one reading a window. A reading of a host of ~120
	// processes costs about 6 ms of CPU, most of it the process scan's
	// opens of each thread's schedstat (agentprof, docs/benchmarks.md): at
	// 5 s that was 0.12% of one core, a fifth of the agent's budget. The
	// rates need no second reading: counters carry over from the previous
	// window's reading.
	DefaultInterval = Duration(10 * time.Second)
	// MinInterval: at 1 s the readings alone take about 0.6% of one core,
	// more than the agent's whole budget; shorter is diagnose's job.
	MinInterval = Duration(time.Second)
	// MinWindow: a window must hold at least a reading, and a second of
	// 19 Hz sampling is already only 19 samples a CPU.
	MinWindow       = Duration(time.Second)
	DefaultMaxAge   = Duration(7 * 24 * time.Hour)
	DefaultMaxSize  = Size(2 << 30)
	DefaultLogLevel = "info"
	// DefaultWebhookTimeout: an alert receiver answers in milliseconds;
	// ten seconds rides out a slow one without holding the queue long.
	DefaultWebhookTimeout = Duration(10 * time.Second)
	// DefaultWebhookAttempts: with backoff from 1 s doubling, five tries
	// span about 15 s, past a receiver's restart.
	DefaultWebhookAttempts = 5
	// DefaultBoostFrequency is 99 Hz (the "99 Hz for 5 minutes":
	// diagnose's rate, over the version comparison's looks at 1, 2, 3 and
	// 5 min): boosted deploys find a 10% slowdown of a tenth of a 2-core
	// service within 5 minutes 14 times in 20, against 0 at 19 Hz, and
	// boosted null deploys raise false findings at 0.75% (12 in 1,600;
	// analyzer/regress TestBoostedDeploys), under the detector's 1%.
	// DefaultBoostPerHour: a quarter of an hour at most, so that at worst
	// the sampling averages 19·¾ + 99·¼ = 39 Hz.
	DefaultBoostFrequency = 99
	DefaultBoostDuration  = Duration(5 * time.Minute)
	DefaultBoostPerHour   = Duration(15 * time.Minute)
	MaxBoostFrequency     = 1000
)

// The ranges of the detector's knobs (regressions.*): beyond them the
// statistics stop meaning what docs/agent.md says (a min_share under
// 0.1% tests thousands of functions of a few samples each; an fdr over
// 20% alerts on noise; a base under one block of 5 min is no base).
const (
	MinRegressShare, MaxRegressShare   = 0.001, 0.5
	MinRegressFDR, MaxRegressFDR       = 1e-4, 0.2
	MinRegressChange, MaxRegressChange = 0.01, 1
	MinBaseWindow                      = Duration(5 * time.Minute)
	MaxBaseWindow                      = Duration(24 * time.Hour)
)

// DefaultIngestMemory is the agent's default ingest.max_memory: an SDK's
// push is tens of KB and a window drains what arrived, so 32 MiB holds a
// window of hundreds of applications, and keeps an ingest flood within
// the agent's 64 MiB goal, where the receiver's own default (256 MiB,
// ingest.DefaultMemory) is sized for a server.
const DefaultIngestMemory = 32 << 20

// Default is the configuration with no file and no flags: the whole host,
// eBPF at the agent's settings, the API on loopback, a week of data.
func Default() Config {
	return Config{
		DataDir:  DefaultDataDir,
		Listen:   DefaultListen,
		Window:   DefaultWindow,
		Interval: DefaultInterval,
		EBPF: EBPF{
			Enabled:        true,
			Frequency:      bpf.AgentFrequency,
			OffCPUSampling: bpf.AgentOffCPUSampling,
			NativeUnwind:   true,
		},
		Retention: Retention{
			MaxAge:  DefaultMaxAge,
			MaxSize: DefaultMaxSize,
			// 10 s windows for 6 h, 1 min ones until 48 h, then 10 min:
			// a week of one service is 2,160 + 2,520 + 720 records
			// instead of 60,480.
			Rollups: []Rollup{
				{After: Duration(6 * time.Hour), Step: Duration(time.Minute)},
				{After: Duration(48 * time.Hour), Step: Duration(10 * time.Minute)},
			},
		},
		Ingest: Ingest{Enabled: true, MaxMemory: DefaultIngestMemory},
		Regressions: Regressions{
			Enabled:    true,
			MinShare:   regress.DefaultVersionOptions().MinShare,
			FDR:        regress.DefaultVersionOptions().FDR,
			MinChange:  regress.DefaultVersionOptions().MinRelChange,
			BaseWindow: Duration(regress.DefaultVersionOptions().BaseWindow),
			Boost:      Boost{Frequency: DefaultBoostFrequency, Duration: DefaultBoostDuration, MaxPerHour: DefaultBoostPerHour},
			Webhook:    Webhook{Timeout: DefaultWebhookTimeout, MaxAttempts: DefaultWebhookAttempts},
		},
		LogLevel: DefaultLogLevel,
	}
}

// ErrUnknownKey is a key in the file that Config does not have.
var ErrUnknownKey = errors.New("unknown key")

// maxFileBytes bounds a config file: a real one is a few KB.
const maxFileBytes = 1 << 20

// Load reads the YAML file at path over Default. Relative paths in it
// (data_dir, token_file, the TLS files) are relative to the file's
// directory, wherever the agent was started. It does not Validate.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading the config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("reading the config %s: %w", path, err)
	}
	if len(b) > maxFileBytes {
		return Config{}, fmt.Errorf("config %s: larger than %d bytes", path, maxFileBytes)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	c.resolve(filepath.Dir(path))
	return c, nil
}

// Parse decodes YAML over Default, strictly: an unknown key, a value of
// the wrong kind, or more than one document is an error naming the line
// and the key.
func Parse(b []byte) (Config, error) {
	c := Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // empty, or only comments: the defaults
		}
		return Config{}, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("more than one YAML document (a second ---)")
	}
	if len(doc.Content) == 1 && doc.Content[0].Tag == "!!null" {
		return c, nil
	}
	// Decode from the bytes again, now strictly into c: the Node API has
	// no KnownFields.
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(err, keysByLine(&doc))
	}
	return c, nil
}

// resolve makes relative paths relative to dir.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{&c.DataDir, &c.TokenFile, &c.TLS.CertFile, &c.TLS.KeyFile, &c.Regressions.Webhook.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.resolveSinks(dir)
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (.+) not found in type (.+)$`)
	intoRE    = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (.+)$")
)

// decodeError rewrites the decoder's errors, "line 3: field x not found in
// type config.TLS", as "line 3: tls.x: unknown key (tls has cert_file,
// key_file)": the key by its path, the keys it could have been.
func decodeError(err error, keys map[int][]keyAt) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(err)
	}
	var errs []error
	for _, e := range te.Errors {
		m := lineRE.FindStringSubmatch(e)
		if m == nil {
			errs = append(errs, errors.New(e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		if u := unknownRE.FindStringSubmatch(msg); u != nil {
			key := keyFor(keys[line], u[1], msg)
			errs = append(errs, fmt.Errorf("line %d: %s: %w%s", line, key, ErrUnknownKey, knownKeys(key)))
			continue
		}
		if u := intoRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("want %s, not %s %q", kindOf(u[3]), strings.TrimPrefix(u[1], "!!"), u[2])
		}
		key := keyFor(keys[line], "", msg)
		if key == "" {
			errs = append(errs, fmt.Errorf("line %d: %s", line, msg))
		} else {
			errs = append(errs, fmt.Errorf("line %d: %s: %s", line, key, msg))
		}
	}
	return errors.Join(errs...)
}

func syntaxError(err error) error {
	return fmt.Errorf("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// kindOf names a Go type as a config value: what the user should write.
func kindOf(goType string) string {
	switch {
	case goType == "string":
		return "text"
	case goType == "bool":
		return "true or false"
	case goType == "int":
		return "a whole number"
	case strings.HasPrefix(goType, "map["):
		return "a mapping of names to values"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "config."):
		return "a mapping of keys"
	}
	return goType
}

// YAML writes c as a config file that Parse reads back to the same
// values: what --check-config prints as the configuration in effect.
func (c Config) YAML() ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("writing the config: %w", err)
	}
	return b, nil
}
