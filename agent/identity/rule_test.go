package identity

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestRuleCompileNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		rule  Rule
		field string
	}{
		{Rule{Exe: "/bin/x"}, "service"},
		{Rule{Service: " api", Exe: "x"}, "service"},
		{Rule{Service: "a\x00b", Exe: "x"}, "service"},
		{Rule{Service: strings.Repeat("s", maxNameLen+1), Exe: "x"}, "service"},
		{Rule{Service: "api", Version: "v\n1", Exe: "x"}, "version"},
		{Rule{Service: "api", Version: "\xff", Exe: "x"}, "version"},
		{Rule{Service: "api"}, "matches nothing"},
		{Rule{Service: "api", Exe: "/usr/bin/[api"}, "exe"},
		{Rule{Service: "api", Cgroup: "/system.slice/\\"}, "cgroup"},
		{Rule{Service: "api", Unit: "[a-.service"}, "unit"},
		{Rule{Service: "api", Container: "[["}, "container"},
		{Rule{Service: "api", Cmdline: "(unclosed"}, "cmdline"},
	} {
		r := tc.rule
		err := r.Compile()
		if err == nil {
			t.Errorf("%+v compiled", tc.rule)
			continue
		}
		if !errors.Is(err, ErrBadRule) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrBadRule naming %s", tc.rule, err, tc.field)
		}
		if tc.field == "exe" && !errors.Is(err, path.ErrBadPattern) {
			t.Errorf("%v does not wrap path.ErrBadPattern", err)
		}
	}
	r := Rule{Service: "api", Version: "v1.2.3", Exe: "/srv/*/api", Cmdline: `--port=\d+`, Cgroup: "/system.slice/*", Unit: "api*.service", Container: "0123*"}
	if err := r.Compile(); err != nil {
		t.Fatalf("a good rule: %v", err)
	}
}

func TestRuleMatches(t *testing.T) {
	f := facts{
		exe:       "/srv/billing/api",
		cmdline:   func() string { return "/srv/billing/api --port=8080 --token=hunter2" },
		cgroup:    "/kubepods.slice/kubepods-burstable.slice/cri-containerd-" + id1 + ".scope",
		unit:      "billing.service",
		container: id1,
	}
	for _, tc := range []struct {
		rule Rule
		want bool
	}{
		{Rule{Exe: "/srv/*/api"}, true},
		{Rule{Exe: "/srv/*"}, false}, // "*" stops at "/"
		{Rule{Exe: "api"}, true},     // no "/": the base name
		{Rule{Exe: "a*"}, true},
		{Rule{Exe: "billing"}, false},
		{Rule{Cmdline: `--port=80\d\d`}, true},
		{Rule{Cmdline: `^api`}, false},
		{Rule{Cgroup: "/kubepods.slice"}, true}, // an ancestor
		{Rule{Cgroup: "/kubepods.slice/*"}, true},
		{Rule{Cgroup: "/kubepods.slice/*/cri-containerd-*.scope"}, true},
		{Rule{Cgroup: "/system.slice/*"}, false},
		{Rule{Cgroup: "/"}, true},
		{Rule{Unit: "billing.service"}, true},
		{Rule{Unit: "*.scope"}, false},
		{Rule{Container: id1}, true},
		{Rule{Container: "0123456789ab"}, true}, // the short ID
		{Rule{Container: "0123*"}, true},
		{Rule{Container: "fedc*"}, false},
		{Rule{Exe: "api", Unit: "billing.service", Cmdline: "port"}, true},
		{Rule{Exe: "api", Unit: "other.service"}, false}, // every field must match
	} {
		r := tc.rule
		r.Service = "s"
		if err := r.Compile(); err != nil {
			t.Fatalf("%+v: %v", tc.rule, err)
		}
		if got := r.matches(&f); got != tc.want {
			t.Errorf("%+v matches %v, want %v", tc.rule, got, tc.want)
		}
	}
	// What a process lacks, a rule on it cannot match.
	none := facts{cmdline: func() string { return "" }}
	for _, r := range []Rule{{Service: "s", Exe: "*"}, {Service: "s", Unit: "*"}, {Service: "s", Container: "*"}, {Service: "s", Cgroup: "*"}} {
		if err := r.Compile(); err != nil {
			t.Fatal(err)
		}
		if r.matches(&none) {
			t.Errorf("%+v matches a process without that fact", r)
		}
	}
}

// FuzzRuleCompile: any fields compile or fail with ErrBadRule, never
// panic, and a compiled rule matches without panicking.
//
//	go test ./agent/identity -run '^$' -fuzz '^FuzzRuleCompile$' -fuzztime 60s
func FuzzRuleCompile(f *testing.F) {
	f.Add("api", "v1", "/srv/*/api", `--port=\d+`, "/system.slice/*", "api*.service", "0123*")
	f.Add("", "", "[", "(", "\\", "[]", "*")
	f.Fuzz(func(t *testing.T, service, version, exe, cmdline, cgroup, unit, container string) {
		if len(cmdline) > 1000 {
			return // regexp's own compile cost is not what is fuzzed
		}
		r := Rule{Service: service, Version: version, Exe: exe, Cmdline: cmdline, Cgroup: cgroup, Unit: unit, Container: container}
		err := r.Compile()
		if err != nil {
			if !errors.Is(err, ErrBadRule) {
				t.Fatalf("%v does not wrap ErrBadRule", err)
			}
			return
		}
		if r.Cmdline != "" {
			if _, err := regexp.Compile(r.Cmdline); err != nil {
				t.Fatalf("compiled a bad regexp %q", r.Cmdline)
			}
		}
		fs := facts{exe: exe, cmdline: func() string { return cmdline }, cgroup: cgroup, unit: unit, container: container}
		r.matches(&fs)
	})
}
