package config

import (
	"errors"
	"fmt"
	"path"
	"regexp"
)

// ServiceRule names the processes it matches. It stands in for
// identity.Rule (agent/identity, written beside this package): the lead
// replaces this file by `type ServiceRule = identity.Rule` on merge, which
// has the same fields, YAML keys and Compile.
//
// A rule matches a process when every matcher it sets matches: Exe, Cgroup,
// Unit and Container are globs (path.Match) on the executable's path, the
// cgroup path, the systemd unit and the container's ID or name; Cmdline is
// a regular expression on the command line, its arguments joined by
// spaces. Service is the name it gives; Version, when set, overrides the
// build ID.
type ServiceRule struct {
	Service   string `yaml:"service"`
	Version   string `yaml:"version"`
	Exe       string `yaml:"exe"`
	Cmdline   string `yaml:"cmdline"`
	Cgroup    string `yaml:"cgroup"`
	Unit      string `yaml:"unit"`
	Container string `yaml:"container"`
}

// Compile checks the rule: a service, at least one matcher, globs and the
// regular expression that parse.
func (r *ServiceRule) Compile() error {
	if r.Service == "" {
		return errors.New("service: missing (the name the rule gives)")
	}
	if r.Exe == "" && r.Cmdline == "" && r.Cgroup == "" && r.Unit == "" && r.Container == "" {
		return errors.New("no matcher: set exe, cmdline, cgroup, unit or container")
	}
	for _, g := range []struct{ key, glob string }{{"exe", r.Exe}, {"cgroup", r.Cgroup}, {"unit", r.Unit}, {"container", r.Container}} {
		if _, err := path.Match(g.glob, ""); err != nil {
			return fmt.Errorf("%s: %q is not a glob: %w", g.key, g.glob, err)
		}
	}
	if _, err := regexp.Compile(r.Cmdline); err != nil {
		return fmt.Errorf("cmdline: %w", err)
	}
	return nil
}
