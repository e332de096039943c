package config

import (
	"reflect"
	"slices"
	"strings"
	"time"
)

// Overrides are the command line's values over the file's: a nil field
// was not given. The command sets a field only when its flag was
// (cobra's Flags().Changed), so that a flag's default never hides the
// file's value:
//
//	var o config.Overrides
//	if cmd.Flags().Changed("data-dir") {
//		o.DataDir = &dataDir
//	}
//	cfg = cfg.Apply(o)
type Overrides struct {
	DataDir   *string        // --data-dir
	Listen    *string        // --listen
	TokenFile *string        // --token-file
	Window    *time.Duration // --window
	Interval  *time.Duration // --interval
	EBPF      *bool          // --ebpf (false: --no-ebpf)
	Frequency *int           // --frequency
	LogLevel  *string        // --log-level
}

// Apply returns c with the overrides that were given. Paths stay as given:
// relative ones are relative to the agent's working directory.
func (c Config) Apply(o Overrides) Config {
	set(&c.DataDir, o.DataDir)
	set(&c.Listen, o.Listen)
	set(&c.TokenFile, o.TokenFile)
	set(&c.EBPF.Enabled, o.EBPF)
	set(&c.EBPF.Frequency, o.Frequency)
	set(&c.LogLevel, o.LogLevel)
	if o.Window != nil {
		c.Window = Duration(*o.Window)
		c.Retention.Rollups = fitRollups(c.Retention.Rollups, c.Window)
	}
	if o.Interval != nil {
		c.Interval = Duration(*o.Interval)
	}
	return c
}

// fitRollups keeps, of the default rollups, those that still merge
// windows of the given length (--window 1m makes the 1 min tier
// meaningless); rollups the user wrote are left for Validate to judge.
func fitRollups(rollups []Rollup, window Duration) []Rollup {
	if window <= 0 || !slices.Equal(rollups, Default().Retention.Rollups) {
		return rollups // a window of no length is Validate's to refuse
	}
	var out []Rollup
	prev := window
	for _, r := range rollups {
		if r.Step > prev && r.Step%prev == 0 {
			out = append(out, r)
			prev = r.Step
		}
	}
	return out
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Reloadable are the top-level keys a SIGHUP applies to the running
// agent; a change to any other needs a restart (NeedsRestart): they hold
// the eBPF session, the watcher's samplers, the store's file or the
// listening socket, which a reload must not lose.
var Reloadable = []string{"window", "retention", "services", "go_services", "regressions", "forward", "labels", "log_level"}

// NeedsRestart lists the top-level keys whose values differ between the
// running config and the next one and that only a restart applies. On
// SIGHUP the agent applies the rest and says which of these it kept.
func NeedsRestart(running, next Config) []string {
	var keys []string
	a, b := reflect.ValueOf(running), reflect.ValueOf(next)
	for i, f := range reflect.VisibleFields(a.Type()) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if slices.Contains(Reloadable, name) {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			keys = append(keys, name)
		}
	}
	return keys
}
