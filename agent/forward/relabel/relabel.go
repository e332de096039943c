// Package relabel is a forwarding sink's relabeling of a window's labels,
// in Prometheus's syntax and semantics (relabel_configs: keep, drop,
// replace, labelmap, labeldrop, labelkeep and the rest), and its caps on
// series and labels, so that one sink's backend sees only the label sets
// its owner chose, and never an unbounded number of them.
//
// The rules are Prometheus's own: github.com/prometheus/prometheus's
// model/relabel applies them (the same code as Prometheus, Alloy and
// Pyroscope's own relabeling), and this package decodes them from the
// agent's YAML, checks them at load with each rule's index, keeps the
// labels Pyroscope and OTLP need, and caps what comes out.
package relabel

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	prom "github.com/prometheus/prometheus/model/relabel"
)

// Config is one sink's relabeling and caps, as a sink's YAML holds them
// (agent/config inlines it in a sink):
//
//	relabel_configs:
//	  - source_labels: [service_name]
//	    regex: 'test-.*'
//	    action: drop
//	max_series: 2000
//	max_labels: 30
type Config struct {
	// RelabelConfigs are applied in order to every window's labels.
	RelabelConfigs []Rule `yaml:"relabel_configs,omitempty"`
	// MaxSeries caps the distinct label sets (after relabeling) the sink
	// sends within SeriesTTL of each other; 0 is DefaultMaxSeries.
	MaxSeries int `yaml:"max_series,omitempty"`
	// MaxLabels caps the labels of one set; 0 is DefaultMaxLabels.
	MaxLabels int `yaml:"max_labels,omitempty"`
}

// Rule is one entry of relabel_configs, with Prometheus's field names and
// defaults: a field left out takes Prometheus's default (separator ";",
// regex "(.*)", replacement "$1", action replace); one given empty is
// empty (replacement: "" deletes the target label, as in Prometheus).
type Rule struct {
	SourceLabels []string `yaml:"source_labels,flow,omitempty"`
	Separator    *string  `yaml:"separator,omitempty"`
	Regex        *string  `yaml:"regex,omitempty"`
	Modulus      uint64   `yaml:"modulus,omitempty"`
	TargetLabel  string   `yaml:"target_label,omitempty"`
	Replacement  *string  `yaml:"replacement,omitempty"`
	Action       string   `yaml:"action,omitempty"`
}

// The caps' defaults and bounds. The defaults are Pyroscope's own limits
// (pkg/validation/limits.go: 30 label names per series, values up to
// 2,048 bytes) and the agent's cardinality guard of 2,000 active series
// per host: a sink past them would be refused by the backend anyway.
const (
	DefaultMaxSeries = 2000
	DefaultMaxLabels = 30
	// MaxMaxSeries bounds the memory of the series seen: 16 bytes and a
	// map slot each, under 4 MB at the bound.
	MaxMaxSeries = 100_000
	// MaxMaxLabels: OTLP has no limit of its own; Pyroscope's is 30 and
	// configurable, Prometheus's default is unlimited but its remote
	// write answers past a few hundred.
	MaxMaxLabels = 256
	// MaxNameBytes and MaxValueBytes are Pyroscope's limits on a label's
	// name and value.
	MaxNameBytes  = 1024
	MaxValueBytes = 2048
	// SeriesTTL is how long a label set counts as active after the last
	// window that had it (window times, not the clock: windows are sent
	// newest first after an outage). Pyroscope rejects windows older than
	// an hour, so a series idle for longer cannot come back through the
	// ingestion window anyway.
	SeriesTTL = time.Hour
)

// The reasons Apply gives for a window it does not keep: what a caller
// counts (perfhound_agent_forward_dropped_total{reason} or the like).
const (
	// ReasonDropped: a keep, drop, keepequal or dropequal rule dropped it.
	ReasonDropped = "relabel_dropped"
	// ReasonSeriesLimit: a new label set past max_series active ones.
	ReasonSeriesLimit = "series_limit"
	// ReasonLabelLimit: more labels than max_labels after relabeling.
	ReasonLabelLimit = "label_limit"
	// ReasonInvalidName: a label name a backend would refuse (a rule
	// built one from a value, or the window came with one).
	ReasonInvalidName = "invalid_label_name"
	// ReasonInvalidValue: a value over MaxValueBytes or not UTF-8.
	ReasonInvalidValue = "invalid_label_value"
)

// Reasons lists every reason Apply gives, for a caller to initialize its
// counters.
var Reasons = []string{ReasonDropped, ReasonSeriesLimit, ReasonLabelLimit, ReasonInvalidName, ReasonInvalidValue}

// ErrConfig is wrapped by every error of New.
var ErrConfig = errors.New("invalid relabeling")

// Relabeler applies one sink's Config. It is safe for concurrent use.
type Relabeler struct {
	rules     []*prom.Config
	maxSeries int
	maxLabels int

	mu     sync.Mutex
	seen   map[uint64]int64 // label set's hash → end of its last window (Unix ns)
	newest int64            // the latest window end seen
}

// New checks cfg and returns its Relabeler. Every error names the rule by
// its index (relabel_configs[2]) and wraps ErrConfig; all are reported.
func New(cfg Config) (*Relabeler, error) {
	r := &Relabeler{maxSeries: cfg.MaxSeries, maxLabels: cfg.MaxLabels}
	var errs []error
	if r.maxSeries == 0 {
		r.maxSeries = DefaultMaxSeries
	}
	if r.maxSeries < 1 || r.maxSeries > MaxMaxSeries {
		errs = append(errs, fmt.Errorf("%w: max_series %d: want 1 to %d", ErrConfig, cfg.MaxSeries, MaxMaxSeries))
	}
	if r.maxLabels == 0 {
		r.maxLabels = DefaultMaxLabels
	}
	if r.maxLabels < 1 || r.maxLabels > MaxMaxLabels {
		errs = append(errs, fmt.Errorf("%w: max_labels %d: want 1 to %d", ErrConfig, cfg.MaxLabels, MaxMaxLabels))
	}
	for i, rule := range cfg.RelabelConfigs {
		pc, err := rule.compile()
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: relabel_configs[%d]: %w", ErrConfig, i, err))
			continue
		}
		r.rules = append(r.rules, pc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.seen = make(map[uint64]int64)
	return r, nil
}

// Validate checks cfg as New does, for agent/config's --check-config and
// reloads: every error, each naming its rule by index.
func (cfg Config) Validate() error {
	_, err := New(cfg)
	return err
}

// compile turns a rule into Prometheus's Config with Prometheus's
// defaults, validated by Prometheus's rules and then by the names the
// agent's backends take: a rule that writes a fixed label name a backend
// would refuse is an error now, not a dropped window later.
func (rule Rule) compile() (*prom.Config, error) {
	pc := prom.DefaultRelabelConfig
	if rule.Action != "" {
		pc.Action = prom.Action(strings.ToLower(rule.Action))
		if !knownAction(pc.Action) {
			return nil, fmt.Errorf("action %q: unknown (keep, drop, replace, labelmap, labeldrop, labelkeep, keepequal, dropequal, hashmod, lowercase, uppercase)", rule.Action)
		}
	}
	for _, n := range rule.SourceLabels {
		if !ValidName(n) {
			return nil, fmt.Errorf("source_labels: %q is not a label name (letters, digits, _ and ., not starting with a digit)", n)
		}
		pc.SourceLabels = append(pc.SourceLabels, model.LabelName(n))
	}
	if rule.Separator != nil {
		pc.Separator = *rule.Separator
	}
	if rule.Regex != nil {
		re, err := prom.NewRegexp(*rule.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", *rule.Regex, err)
		}
		pc.Regex = re
	}
	pc.Modulus = rule.Modulus
	pc.TargetLabel = rule.TargetLabel
	if rule.Replacement != nil {
		pc.Replacement = *rule.Replacement
	}
	// UTF-8 validation lets Prometheus accept the dotted names the agent
	// uses (k8s.pod); the agent's own, stricter, names are checked below.
	pc.NameValidationScheme = model.UTF8Validation
	if err := pc.Validate(model.UTF8Validation); err != nil {
		return nil, err
	}
	switch pc.Action {
	case prom.Replace:
		if !validTemplate(pc.TargetLabel) {
			return nil, fmt.Errorf("target_label %q: not a label name (letters, digits, _ and ., not starting with a digit; $1 or ${name} from the regex)", pc.TargetLabel)
		}
	case prom.HashMod, prom.Lowercase, prom.Uppercase, prom.KeepEqual, prom.DropEqual:
		// These take target_label as it is written, never expanded.
		if !ValidName(pc.TargetLabel) {
			return nil, fmt.Errorf("target_label %q: not a label name (letters, digits, _ and ., not starting with a digit)", pc.TargetLabel)
		}
	case prom.LabelMap:
		if !validTemplate(pc.Replacement) {
			return nil, fmt.Errorf("replacement %q: labelmap would make names that are not label names (letters, digits, _ and ., not starting with a digit; $1 or ${name} from the regex)", pc.Replacement)
		}
	}
	return &pc, nil
}

func knownAction(a prom.Action) bool {
	switch a {
	case prom.Replace, prom.Keep, prom.Drop, prom.KeepEqual, prom.DropEqual, prom.HashMod,
		prom.LabelMap, prom.LabelDrop, prom.LabelKeep, prom.Lowercase, prom.Uppercase:
		return true
	}
	return false
}

// ValidName says whether name is a label name every backend of the agent
// takes: letters, digits, _ and . (the agent's own label names, and
// Pyroscope's SDKs'), not starting with a digit (Prometheus's rule), at
// most MaxNameBytes.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameBytes || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// refRE is a reference to a regex group in a template: $1, $name, ${1}.
var refRE = regexp.MustCompile(`\$(?:\{\w+\}|\w+)`)

// validTemplate says whether a target_label (or labelmap replacement)
// can make a valid name: its fixed parts are name characters, and it
// starts with a letter, _ or a reference. What a reference expands to is
// checked on each window.
func validTemplate(t string) bool {
	if !strings.Contains(t, "$") {
		return ValidName(t)
	}
	return ValidName(refRE.ReplaceAllString(t, "x"))
}

// Reserved says whether a label is one the backends need: service_name
// (Pyroscope's required label, OTLP's service.name) and every name
// starting with __ (Pyroscope's __name__, the profile kind, and its
// __delta__, __session_id__, ...). A labelkeep rule keeps them whatever
// its regex (a rule keeping env must not strip the service); they go
// only by a rule about them: a labeldrop whose regex matches one (.*
// matches all), a replace that writes one empty.
func Reserved(name string) bool {
	return name == "service_name" || strings.HasPrefix(name, "__")
}

// Apply relabels one window's labels (which it does not modify) and
// applies the caps. at is the window's end: a label set counts against
// max_series until SeriesTTL after the latest window that had it. It
// returns the labels to send and true, or nil, false and the reason (one
// of Reasons) the window is not to be sent.
func (r *Relabeler) Apply(in map[string]string, at time.Time) (map[string]string, bool, string) {
	lb := labels.NewBuilder(labels.FromMap(in))
	for _, rule := range r.rules {
		var kept map[string]string
		if rule.Action == prom.LabelKeep {
			kept = reserved(lb)
		}
		if !prom.ProcessBuilder(lb, rule) {
			return nil, false, ReasonDropped
		}
		for n, v := range kept {
			lb.Set(n, v)
		}
	}
	ls := lb.Labels()
	if ls.Len() > r.maxLabels {
		return nil, false, ReasonLabelLimit
	}
	reason := ""
	ls.Range(func(l labels.Label) {
		switch {
		case reason != "":
		case !ValidName(l.Name):
			reason = ReasonInvalidName
		case len(l.Value) > MaxValueBytes || !utf8.ValidString(l.Value):
			reason = ReasonInvalidValue
		}
	})
	if reason != "" {
		return nil, false, reason
	}
	if !r.admit(ls.Hash(), at.UnixNano()) {
		return nil, false, ReasonSeriesLimit
	}
	return ls.Map(), true, ""
}

// reserved copies the reserved labels of lb: what a labelkeep rule must
// leave.
func reserved(lb *labels.Builder) map[string]string {
	m := map[string]string{}
	lb.Range(func(l labels.Label) {
		if Reserved(l.Name) {
			m[l.Name] = l.Value
		}
	})
	return m
}

// admit records a label set seen at t and says whether it may be sent: a
// set already active always may; a new one only while fewer than
// maxSeries are active. Sets idle for SeriesTTL before the newest window
// are forgotten, only when room is needed, so the map never holds more
// than maxSeries.
func (r *Relabeler) admit(h uint64, t int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t > r.newest {
		r.newest = t
	}
	if last, ok := r.seen[h]; ok {
		if t > last {
			r.seen[h] = t
		}
		return true
	}
	if len(r.seen) >= r.maxSeries {
		cutoff := r.newest - int64(SeriesTTL)
		for k, last := range r.seen {
			if last < cutoff {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= r.maxSeries {
			return false
		}
	}
	r.seen[h] = t
	return true
}

// Series is the number of label sets counted as active.
func (r *Relabeler) Series() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}
