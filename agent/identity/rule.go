package identity

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// ErrBadRule is what every error of Rule.Compile wraps, so that a caller
// can tell a bad rule from other failures with errors.Is.
var ErrBadRule = errors.New("bad identity rule")

// Rule names the processes it matches as one service (and, optionally,
// one version). It is what the agent's configuration lists under
// `services:`; agent/config decodes a list of them from YAML.
//
// A rule matches a process when every field it sets matches (an unset
// field matches anything); at least one of Exe, Cmdline, Cgroup, Unit and
// Container must be set. The first matching rule of a list wins.
//
// Exe, Cgroup, Unit and Container are path.Match globs ("*" never crosses
// a "/"); Cmdline is a regular expression (regexp syntax, unanchored).
type Rule struct {
	// Service is the service_name of the matched processes. Required.
	Service string `yaml:"service"`
	// Version, when set, replaces the executable's build ID as the
	// version (the build ID stays in the build_id label).
	Version string `yaml:"version"`
	// Exe matches the executable's path as the process sees it (e.g.
	// "/usr/local/bin/api-*"); a pattern without a "/" matches its base
	// name instead (e.g. "postgres").
	Exe string `yaml:"exe"`
	// Cmdline matches the command line, its arguments joined by single
	// spaces (e.g. `-jar /srv/(billing|orders)\.jar`). The command line
	// is read only to match it: it never becomes a label.
	Cmdline string `yaml:"cmdline"`
	// Cgroup matches the process's cgroup path (see Identity's doc for
	// which line of /proc/PID/cgroup) or any of its ancestors, so
	// "/kubepods.slice/*" matches every cgroup beneath kubepods.slice.
	Cgroup string `yaml:"cgroup"`
	// Unit matches the systemd unit's full name (e.g. "nginx.service",
	// "app-*.scope").
	Unit string `yaml:"unit"`
	// Container matches the container's ID, the full 64 hex digits or the
	// 12-digit short form (names need the runtime's API, which the agent
	// does not call).
	Container string `yaml:"container"`

	cmdline  *regexp.Regexp
	compiled bool
}

// maxNameLen bounds a rule's service and version: they become label
// values and store keys.
const maxNameLen = 256

// Compile checks the rule and compiles its command-line expression. It
// must succeed before the rule is used; its errors wrap ErrBadRule and
// name the field at fault (e.g. `exe "[a": syntax error in pattern`).
func (r *Rule) Compile() error {
	bad := func(field, value string, err error) error {
		return fmt.Errorf("%w: %s %q: %w", ErrBadRule, field, value, err)
	}
	if err := checkName(r.Service, true); err != nil {
		return bad("service", r.Service, err)
	}
	if err := checkName(r.Version, false); err != nil {
		return bad("version", r.Version, err)
	}
	if r.Exe == "" && r.Cmdline == "" && r.Cgroup == "" && r.Unit == "" && r.Container == "" {
		return fmt.Errorf("%w: service %q: matches nothing: set at least one of exe, cmdline, cgroup, unit, container", ErrBadRule, r.Service)
	}
	for _, g := range []struct{ field, pattern string }{
		{"exe", r.Exe}, {"cgroup", r.Cgroup}, {"unit", r.Unit}, {"container", r.Container},
	} {
		if _, err := path.Match(g.pattern, ""); err != nil {
			return bad(g.field, g.pattern, err)
		}
	}
	r.cmdline = nil
	if r.Cmdline != "" {
		re, err := regexp.Compile(r.Cmdline)
		if err != nil {
			return bad("cmdline", r.Cmdline, err)
		}
		r.cmdline = re
	}
	r.compiled = true
	return nil
}

// checkName refuses what must not become a label value or a store key:
// control characters (a NUL would split the store's keys), invalid
// UTF-8, surrounding space, and more than maxNameLen bytes.
func checkName(s string, required bool) error {
	switch {
	case s == "":
		if required {
			return errors.New("empty")
		}
		return nil
	case len(s) > maxNameLen:
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	case strings.TrimSpace(s) != s:
		return errors.New("leading or trailing space")
	}
	for _, c := range s {
		if c == unicode.ReplacementChar || unicode.IsControl(c) {
			return errors.New("control character or invalid UTF-8")
		}
	}
	return nil
}

// facts are what a rule matches on, for one process.
type facts struct {
	exe       string // path as the process sees it, "" if unreadable
	cmdline   func() string
	cgroup    string
	unit      string
	container string // full ID
}

// matches reports whether every field r sets matches f. r is compiled.
func (r *Rule) matches(f *facts) bool {
	if r.Exe != "" {
		name := f.exe
		if !strings.Contains(r.Exe, "/") {
			name = path.Base(f.exe)
		}
		if f.exe == "" || !glob(r.Exe, name) {
			return false
		}
	}
	if r.Unit != "" && (f.unit == "" || !glob(r.Unit, f.unit)) {
		return false
	}
	if r.Container != "" && (f.container == "" || !(glob(r.Container, f.container) || glob(r.Container, shortID(f.container)))) {
		return false
	}
	if r.Cgroup != "" && !cgroupMatches(r.Cgroup, f.cgroup) {
		return false
	}
	if r.cmdline != nil && !r.cmdline.MatchString(f.cmdline()) {
		return false
	}
	return true
}

// glob is path.Match for a pattern Compile has checked.
func glob(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// cgroupMatches matches pattern against p and each of its ancestors.
func cgroupMatches(pattern, p string) bool {
	if p == "" {
		return false
	}
	for {
		if glob(pattern, p) {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return p != "/" && glob(pattern, "/")
		}
		p = p[:i]
	}
}
