// Package docs holds the user guides; its test keeps their links true.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mdLink is a markdown link or image target: ](target) up to a space,
// a title or the closing parenthesis.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)`)

// TestLinksStayInTheRepository checks that every relative link in the
// README and docs/ names a file or directory that exists inside the
// repository: a clone must be readable on its own, without the project
// space it was written in.
func TestLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	pages = append(pages, filepath.Join(root, "README.md"))
	checked := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			rel, _ := filepath.Rel(root, page)
			if filepath.IsAbs(target) {
				t.Errorf("%s links to the absolute path %s", rel, target)
				continue
			}
			abs := filepath.Join(filepath.Dir(page), target)
			if inside, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(inside, "..") {
				t.Errorf("%s links to %s, outside the repository", rel, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links to %s, which does not exist", rel, target)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the pattern no longer matches the pages")
	}
}
