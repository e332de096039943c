package docs

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/perfhound/perfhound/"

// The import rules of architecture.md, package by package. A rule names a
// package (or a tree, "x/...") and the perfhound packages it may import;
// every package of the module is held to the first rule that names it.
var importRules = []struct {
	pkg     string
	mayUse  []string
	because string
}{
	{"internal/textfmt", nil, "formatting is a leaf the analyzer and the agent's API share"},
	{"internal/report", []string{"internal/textfmt"}, "the report model is a leaf the analyzer and the agent's API share"},
	{"internal/...", []string{"internal/...", "analyzer/profdecode"}, "the module's shared helpers build on nothing above them"},
	{"analyzer/profdecode", nil, "profile decoding is the leaf every reader of profiles shares"},
	{"analyzer/internal/gosym", nil, "reading Go function names is a leaf verdict and profdiff share"},
	{"analyzer/observation", []string{"analyzer/profdecode", "analyzer/internal/regfile", "internal/textfmt"},
		"the observation is what collectors and analyzer share: it imports no analysis"},
	{"analyzer/verdict", []string{"analyzer/observation", "analyzer/internal/gosym", "internal/report", "internal/textfmt"},
		"the verdict judges an observation and nothing else"},
	{"analyzer/...", []string{"analyzer/...", "internal/..."}, "the analyzer is pure: it never imports the agent, the kernel side or the CLI"},
	{"bpf/...", []string{"bpf/..."}, "the kernel side never imports the agent or the analyzer"},
	{"agent/...", []string{"agent/...", "analyzer/...", "bpf/...", "internal/..."}, "the agent never imports the CLI"},
}

// forbidden are imports the rules above allow by tree but one package
// must not make: obsdiff compares observations and must not lean on the
// CI package compare (the policy is stat's, the format report's).
var forbidden = map[string]string{
	"analyzer/obsdiff": "analyzer/compare",
}

func matches(pattern, pkg string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return pkg == pattern
}

// TestImportsGoOneWay reads the imports of every package in the module
// (test files aside) and checks them against architecture.md's rules.
func TestImportsGoOneWay(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string][]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(p, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, p)
		for _, imp := range bp.Imports {
			if own, ok := strings.CutPrefix(imp, module); ok {
				imports[filepath.ToSlash(rel)] = append(imports[filepath.ToSlash(rel)], own)
			}
		}
		if _, ok := imports[filepath.ToSlash(rel)]; !ok {
			imports[filepath.ToSlash(rel)] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 20 {
		t.Fatalf("found %d packages: the walk no longer sees the module", len(imports))
	}
	pkgs := make([]string, 0, len(imports))
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		for _, rule := range importRules {
			if !matches(rule.pkg, pkg) {
				continue
			}
			for _, imp := range imports[pkg] {
				ok := false
				for _, allowed := range rule.mayUse {
					ok = ok || matches(allowed, imp)
				}
				if !ok {
					t.Errorf("%s imports %s: %s", pkg, imp, rule.because)
				}
				if forbidden[pkg] == imp {
					t.Errorf("%s imports %s, which it must not", pkg, imp)
				}
			}
			break
		}
	}
	// The rules must name real packages, or they guard nothing.
	for _, rule := range importRules {
		found := false
		for _, pkg := range pkgs {
			found = found || matches(rule.pkg, pkg)
		}
		if !found {
			t.Errorf("rule for %s names no package", rule.pkg)
		}
	}
}
