package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzLoad: any bytes as a config file give a Config or an error, never a
// panic; a Config that validates, written back, reads as the same.
func FuzzLoad(f *testing.F) {
	for _, file := range []string{"testdata/every-key.yaml", "../../docs/agent.example.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("window: 1.5d\nretention: {max_size: 1.5GiB}\n"))
	f.Add([]byte("tls: {cert: x}\nservices: [{service: a, exe: '[x'}]\n"))
	f.Add([]byte("labels: {a: &x b, c: *x}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		_ = c.Validate()
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("YAML of a parsed config: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("reading back\n%s: %v", out, err)
		}
		out2, _ := again.YAML()
		if !bytes.Equal(out, out2) {
			t.Fatalf("written, read and written again differs:\n%s\n---\n%s", out, out2)
		}
	})
}
