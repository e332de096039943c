package report

import "testing"

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"text": Text, "markdown": Markdown, "md": Markdown, "json": JSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("html"); err == nil {
		t.Error(`ParseFormat("html"): no error`)
	}
}
