package report

import "fmt"

// Format is what a report is written as: --format of the commands that
// compare.
type Format string

const (
	Text     Format = "text"     // for a terminal (WriteText)
	Markdown Format = "markdown" // for a pull request or a ticket (WriteMarkdown)
	JSON     Format = "json"     // the report's own versioned document
)

// ParseFormat checks a --format value; "md" is markdown.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, Markdown, JSON:
		return f, nil
	case "md":
		return Markdown, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, markdown or json)", s)
}
