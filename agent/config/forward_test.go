package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidateSinks names every wrong key of the sinks at once.
func TestValidateSinks(t *testing.T) {
	c := Default()
	c.Forward.Sinks = []Sink{
		{Name: "ok", Type: "pyroscope", URL: "https://p.example.com", Protocol: "grpc", IngestionWindow: Duration(time.Hour)},
		{Name: "ok", Type: "parca", URL: "ftp://x", IngestionWindow: Duration(time.Second), Timeout: Duration(time.Hour),
			BasicAuth: BasicAuth{Username: "u"}},
		{Name: "-bad", Type: "pyroscope", URL: "http://p", Protocol: "thrift", BasicAuth: BasicAuth{Username: "u", PasswordFile: "/p"}, BearerTokenFile: "/t",
			TLS: SinkTLS{CertFile: "/c"}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad sinks validated")
	}
	for _, want := range []string{
		`forward.sinks[1].name: "ok" is forward.sinks[0]'s already`,
		`forward.sinks[1].type: "parca" is none of pyroscope`,
		`forward.sinks[1].url: want an http:// or https:// URL`,
		`forward.sinks[2].protocol: "thrift" is none of connect, grpc, grpcweb`,
		`forward.sinks[1].ingestion_window: 1s is out of range`,
		`forward.sinks[1].timeout: 1h is out of range`,
		`forward.sinks[1].basic_auth: needs both username and password_file`,
		`forward.sinks[2].name: "-bad"`,
		`forward.sinks[2].tls: set for an http:// URL`,
		`forward.sinks[2].bearer_token_file: set with basic_auth`,
		`forward.sinks[2].tls: a client certificate needs both`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "forward.sinks[0].") {
		t.Errorf("the good sink was refused:\n%v", err)
	}
}

// TestSinkFiles: relative files are the config's directory's, and
// CheckFiles reads the secrets as the agent will.
func TestSinkFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.yaml")
	yaml := "forward:\n  sinks:\n    - name: p\n      type: pyroscope\n      url: http://127.0.0.1:4040\n      bearer_token_file: token\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Forward.Sinks[0].BearerTokenFile; got != filepath.Join(dir, "token") {
		t.Errorf("bearer_token_file %s, want it in the config's directory", got)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "forward.sinks[0].bearer_token_file") {
		t.Errorf("a missing token file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err != nil {
		t.Errorf("a good token file: %v", err)
	}
}
