package ingest

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a push's name, Pyroscope's defaults (pkg/validation/limits.go):
// a target's labels are kept for every profile it pushes, so their number
// and size are capped like Pyroscope caps a series.
const (
	maxLabels     = 30   // labels per name
	maxLabelName  = 1024 // bytes of a label name
	maxLabelValue = 2048 // bytes of a label value, and of the application name
)

// ParseName splits "app{k=v,k2=v2}", the name the Pyroscope SDKs send,
// into the application and its labels, validated as the SDKs validate
// them (github.com/grafana/pyroscope-go/internal/labelset):
//   - the application name is letters, digits and _ . / - ;
//   - a label name is letters, digits, _ and . (not __name__, which the
//     application name is);
//   - a label value is UTF-8 text without control characters or the
//     name's own syntax ({, }, and the , that ends it);
//
// with nothing after the closing }, each label given once, at most 30
// labels, names of at most 1024 bytes and values (and the application
// name) of at most 2048. Spaces around parts are dropped, as the SDKs do.
// Whatever passes reads one way only.
func ParseName(s string) (string, map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil, errors.New("missing")
	}
	app, rest, hasLabels := strings.Cut(s, "{")
	app = strings.TrimSpace(app)
	if err := checkApp(app); err != nil {
		return "", nil, fmt.Errorf("%s: %w", short(s), err)
	}
	if !hasLabels {
		return app, nil, nil
	}
	body, tail, closed := strings.Cut(rest, "}")
	if !closed {
		return "", nil, fmt.Errorf("%s: labels not closed with }", short(s))
	}
	if strings.TrimSpace(tail) != "" {
		return "", nil, fmt.Errorf("%s: %s after the labels' closing }", short(s), short(tail))
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(body, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return "", nil, fmt.Errorf("%s: label %s is not key=value", short(s), short(kv))
		}
		if err := checkLabel(k, v); err != nil {
			return "", nil, fmt.Errorf("%s: %w", short(s), err)
		}
		if _, dup := labels[k]; dup {
			return "", nil, fmt.Errorf("%s: label %s given twice", short(s), k)
		}
		if len(labels) == maxLabels {
			return "", nil, fmt.Errorf("%s: more than %d labels", short(s), maxLabels)
		}
		labels[k] = v
	}
	return app, labels, nil
}

// MaxLabels is the most labels a name may carry (Pyroscope's limit).
const MaxLabels = maxLabels

// CheckLabel checks one label by the rules ParseName applies to each (the
// SDKs' characters, Pyroscope's sizes): the agent's config validates the
// static labels it adds to every profile by it.
func CheckLabel(name, value string) error { return checkLabel(name, value) }

func checkApp(app string) error {
	switch {
	case app == "":
		return errors.New("no application name")
	case len(app) > maxLabelValue:
		return fmt.Errorf("application name longer than %d bytes", maxLabelValue)
	}
	for _, r := range app {
		if !isNameRune(r) && r != '-' && r != '/' {
			return fmt.Errorf("application name: %q is not allowed (letters, digits and _ . / - are)", r)
		}
	}
	return nil
}

func checkLabel(k, v string) error {
	switch {
	case k == "":
		return errors.New("a label without a name")
	case len(k) > maxLabelName:
		return fmt.Errorf("label name %s longer than %d bytes", short(k), maxLabelName)
	case k == "__name__":
		return errors.New("label name __name__ is reserved for the application name")
	case len(v) > maxLabelValue:
		return fmt.Errorf("label %s: value longer than %d bytes", short(k), maxLabelValue)
	case !utf8.ValidString(v):
		return fmt.Errorf("label %s: value is not UTF-8", short(k))
	}
	for _, r := range k {
		if !isNameRune(r) {
			return fmt.Errorf("label name %s: %q is not allowed (letters, digits, _ and . are)", short(k), r)
		}
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == '{' || r == '}' {
			return fmt.Errorf("label %s: %q is not allowed in a value", k, r)
		}
	}
	return nil
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.'
}

// short quotes s for an error message, cut to 64 bytes: a name may be
// 90 KB long and control characters must not reach a log raw.
func short(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}
