package otlp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/perfhound/perfhound/agent/forward"
)

// rawCodec sends and receives bytes as they are: a request the
// receiver cannot decode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = b
	return nil
}
func (rawCodec) Name() string { return "raw" }

var _ encoding.Codec = rawCodec{}

func grpcRawCodec() grpc.CallOption { return grpc.ForceCodec(rawCodec{}) }

// The otlp receiver never answers with a partial success, so these two
// tests stand up the smallest servers that do, with the pdata module's
// own gRPC registration and response encoding.

type partialServer struct {
	pprofileotlp.UnimplementedGRPCServer
}

func (partialServer) Export(context.Context, pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	r := pprofileotlp.NewExportResponse()
	r.PartialSuccess().SetRejectedProfiles(2)
	r.PartialSuccess().SetErrorMessage("sample type unknown")
	return r, nil
}

func TestPartialSuccessGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pprofileotlp.RegisterGRPCServer(srv, &partialServer{})
	go srv.Serve(l)
	defer srv.Stop()
	s := newSink(t, Options{Endpoint: l.Addr().String(), Protocol: ProtocolGRPC})
	err = s.Send(context.Background(), liveWindow(t))
	if !errors.Is(err, forward.ErrInvalid) || !strings.Contains(err.Error(), "rejected 2 of") || !strings.Contains(err.Error(), "sample type unknown") {
		t.Fatalf("partial success: %v, want ErrInvalid naming 2 rejected and the message", err)
	}
}

func TestPartialSuccessHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HTTPPath || r.Header.Get(pprofileotlp.DevelopmentVersionHeader) != pprofileotlp.DevelopmentVersion {
			http.Error(w, "wrong path or version", http.StatusNotFound)
			return
		}
		resp := pprofileotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedProfiles(1)
		resp.PartialSuccess().SetErrorMessage("too many samples")
		b, _ := resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	defer srv.Close()
	s := newSink(t, Options{Endpoint: srv.URL, Protocol: ProtocolHTTP})
	err := s.Send(context.Background(), liveWindow(t))
	if !errors.Is(err, forward.ErrInvalid) || !strings.Contains(err.Error(), "too many samples") {
		t.Fatalf("partial success: %v, want ErrInvalid with the message", err)
	}
}

func TestClassify(t *testing.T) {
	for code, want := range map[int]error{
		400: forward.ErrInvalid, 413: forward.ErrInvalid, 500: forward.ErrInvalid,
		429: forward.ErrUnavailable, 502: forward.ErrUnavailable, 503: forward.ErrUnavailable, 504: forward.ErrUnavailable,
		401: nil, 403: nil, 404: nil,
	} {
		err := httpError(code, "text/plain", []byte("x"))
		inv, un := errors.Is(err, forward.ErrInvalid), errors.Is(err, forward.ErrUnavailable)
		switch {
		case want == nil && (inv || un):
			t.Errorf("http %d: %v, want neither sentinel", code, err)
		case want != nil && !errors.Is(err, want):
			t.Errorf("http %d: %v, want %v", code, err, want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Endpoint: "x:1", Protocol: "udp"},
		{Endpoint: "x:1", Compression: "zstd"},
		{Endpoint: "ftp://x", Protocol: ProtocolHTTP},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) took it", o)
		}
	}
	for in, want := range map[string]string{
		"collector:4318":            "https://collector:4318/v1development/profiles",
		"http://collector:4318":     "http://collector:4318/v1development/profiles",
		"https://c:443/custom/path": "https://c:443/custom/path",
		"http://collector:4318/":    "http://collector:4318/v1development/profiles",
	} {
		if got, err := httpURL(in, false); err != nil || got != want {
			t.Errorf("httpURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
