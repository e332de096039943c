package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Keys lists every key of Config as a path, in the order of the struct:
// "tls.cert_file", "retention.rollups[].step", "services[].exe". A key
// holding a mapping of keys is listed too ("tls"), before its keys;
// "labels" is a free mapping, whose names are the user's.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" && strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix) // its keys are the parent's
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			path := prefix + name
			keys = append(keys, path)
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				walk(ft.Elem(), path+"[].")
			} else if ft.Kind() == reflect.Struct {
				walk(ft, path+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

var index = regexp.MustCompile(`\[\d+\]`)

// knownKeys says which keys could stand where the unknown key at path is.
func knownKeys(path string) string {
	parent := ""
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent = index.ReplaceAllString(path[:i], "[]") + "."
	}
	var names []string
	for _, k := range Keys() {
		if rest, ok := strings.CutPrefix(k, parent); ok && !strings.ContainsAny(rest, ".[") {
			names = append(names, rest)
		}
	}
	if len(names) == 0 {
		return ""
	}
	where := "the top level"
	if parent != "" {
		where = strings.TrimSuffix(parent, ".")
	}
	return fmt.Sprintf(" (%s has %s)", where, strings.Join(names, ", "))
}

// keyAt is a key of the file, where it is and what it holds.
type keyAt struct {
	path  string
	value string // a scalar's text
}

// keysByLine maps each line of the document to the keys written on it,
// so that the decoder's errors, which give a line, can name the key.
func keysByLine(doc *yaml.Node) map[int][]keyAt {
	lines := map[int][]keyAt{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				lines[k.Line] = append(lines[k.Line], keyAt{p, v.Value})
				if v.Line != k.Line {
					lines[v.Line] = append(lines[v.Line], keyAt{p, v.Value})
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode {
					lines[c.Line] = append(lines[c.Line], keyAt{p, c.Value})
				}
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return lines
}

// keyFor picks the key an error on a line is about: the one named, else
// the one whose value the message quotes, else the outermost one there.
func keyFor(keys []keyAt, name, msg string) string {
	if len(keys) == 0 {
		return ""
	}
	for _, k := range keys {
		if name != "" && (k.path == name || strings.HasSuffix(k.path, "."+name)) {
			return k.path
		}
	}
	for _, k := range keys {
		if k.value != "" && strings.Contains(msg, strconv.Quote(k.value)) {
			return k.path
		}
	}
	return keys[0].path
}
