package otlp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/receiver/xreceiver"

	"github.com/perfhound/perfhound/agent/forward"
	"github.com/perfhound/perfhound/analyzer/observation"
)

// profilesSink is the receiver's next consumer: it keeps what arrives,
// or answers with err.
type profilesSink struct {
	consumertest.ProfilesSink
	mu  sync.Mutex
	err error
}

func (c *profilesSink) setErr(err error) { c.mu.Lock(); c.err = err; c.mu.Unlock() }

func (c *profilesSink) ConsumeProfiles(ctx context.Context, pd pprofile.Profiles) error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.ProfilesSink.ConsumeProfiles(ctx, pd)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startReceiver runs the Collector's otlp receiver with the profiles
// signal on a loopback port for protocol p, and returns its endpoint.
func startReceiver(t *testing.T, p Protocol) (string, *profilesSink) {
	t.Helper()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	addr := freeAddr(t)
	switch p {
	case ProtocolGRPC:
		g := cfg.Protocols.GRPC.GetOrInsertDefault()
		g.NetAddr.Endpoint = addr
		g.IncludeMetadata = true
	case ProtocolHTTP:
		h := cfg.Protocols.HTTP.GetOrInsertDefault()
		h.ServerConfig.NetAddr.Endpoint = addr
		h.ServerConfig.IncludeMetadata = true
	}
	sink := new(profilesSink)
	r, err := f.(xreceiver.Factory).CreateProfiles(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if p == ProtocolHTTP {
		return "http://" + addr, sink
	}
	return addr, sink
}

func newSink(t *testing.T, o Options) *Sink {
	t.Helper()
	o.Insecure = true
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

//go:noinline
func hashWork(seed []byte, rounds int) [32]byte {
	sum := sha256.Sum256(seed)
	for range rounds {
		sum = sha256.Sum256(sum[:])
	}
	return sum
}

var liveOnce = sync.OnceValues(liveProfiles)

// liveProfiles profiles this test binary: CPU while it hashes under a
// pprof label (until the profile holds samples, at most 10 tries), and
// its heap.
func liveProfiles() ([]forward.Profile, error) {
	var cpu *profile.Profile
	for try := 0; try < 10 && (cpu == nil || len(cpu.Sample) == 0); try++ {
		var b bytes.Buffer
		if err := pprof.StartCPUProfile(&b); err != nil {
			return nil, err
		}
		pprof.Do(context.Background(), pprof.Labels("handler", "hash"), func(context.Context) {
			start := time.Now()
			for time.Since(start) < 300*time.Millisecond {
				hashWork([]byte("perfhound"), 20000)
			}
		})
		pprof.StopCPUProfile()
		p, err := profile.Parse(&b)
		if err != nil {
			return nil, err
		}
		cpu = p
	}
	if len(cpu.Sample) == 0 {
		return nil, errors.New("no CPU samples in 10 tries")
	}
	keep := make([][]byte, 0, 1000)
	for i := range 1000 {
		keep = append(keep, make([]byte, 4096+i))
	}
	runtime.GC()
	var b bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
		return nil, err
	}
	runtime.KeepAlive(keep)
	heap, err := profile.Parse(&b)
	if err != nil {
		return nil, err
	}
	return []forward.Profile{{Kind: observation.KindCPU, Profile: cpu}, {Kind: observation.KindHeap, Profile: heap}}, nil
}

func liveWindow(t *testing.T) forward.Window {
	t.Helper()
	ps, err := liveOnce()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	return forward.Window{
		Service: "checkout",
		Version: "0e5c0d4f8a3b",
		Host:    "web-1",
		Labels: map[string]string{
			"service_name": "checkout", "version": "0e5c0d4f8a3b",
			"exe": "checkout", "build_id": "0e5c0d4f8a3b", "container_id": "3f2a9c",
			"systemd_unit": "checkout.service", "env": "prod",
		},
		Start: end.Add(-10 * time.Second), End: end,
		Profiles: ps,
	}
}

// hostWindow is a window the agent stored: eBPF CPU, off-CPU and page
// fault profiles of a whole host, many processes.
func hostWindow(t testing.TB) forward.Window {
	t.Helper()
	o, err := observation.Load("../../store/testdata/host-window")
	if err != nil {
		t.Fatal(err)
	}
	w := forward.Window{Service: "host", Host: o.Meta.Host, Start: o.Meta.Start, End: o.Meta.Start.Add(o.Meta.Duration)}
	for _, p := range o.Profiles {
		w.Profiles = append(w.Profiles, forward.Profile{Kind: p.Kind, Profile: p.Profile})
	}
	if len(w.Profiles) != 3 {
		t.Fatalf("host window: %d profiles, want 3", len(w.Profiles))
	}
	return w
}

func TestSendLiveWindow(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTP} {
		for _, comp := range []string{"gzip", "none"} {
			t.Run(string(p)+"/"+comp, func(t *testing.T) {
				addr, got := startReceiver(t, p)
				s := newSink(t, Options{Endpoint: addr, Protocol: p, Compression: comp,
					Headers: map[string]string{"X-Scope-OrgID": "tenant-7"}})
				w := liveWindow(t)
				if err := s.Send(context.Background(), w); err != nil {
					t.Fatal(err)
				}
				all := got.AllProfiles()
				if len(all) != 1 {
					t.Fatalf("the receiver got %d requests, want 1", len(all))
				}
				attrs := checkReceived(t, w, all[0])
				want := map[string]string{
					"service.name": "checkout", "service.version": "0e5c0d4f8a3b", "host.name": "web-1",
					"process.executable.name": "checkout", "process.executable.build_id.gnu": "0e5c0d4f8a3b",
					"container.id": "3f2a9c", "systemd_unit": "checkout.service", "env": "prod",
				}
				if fmt.Sprint(attrs) != fmt.Sprint(want) {
					t.Errorf("resource attributes:\n got %v\nwant %v", attrs, want)
				}
				md := client.FromContext(got.Contexts()[0]).Metadata
				if v := md.Get("X-Scope-OrgID"); !slices.Equal(v, []string{"tenant-7"}) {
					t.Errorf("header X-Scope-OrgID arrived as %q", v)
				}
			})
		}
	}
}

func TestSendHostWindow(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTP} {
		t.Run(string(p), func(t *testing.T) {
			addr, got := startReceiver(t, p)
			s := newSink(t, Options{Endpoint: addr, Protocol: p})
			w := hostWindow(t)
			if err := s.Send(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			all := got.AllProfiles()
			if len(all) != 1 {
				t.Fatalf("the receiver got %d requests, want 1", len(all))
			}
			attrs := checkReceived(t, w, all[0])
			// Many processes: no executable is the resource's.
			want := map[string]string{"service.name": "host", "host.name": "vm"}
			if fmt.Sprint(attrs) != fmt.Sprint(want) {
				t.Errorf("resource attributes:\n got %v\nwant %v", attrs, want)
			}
		})
	}
}

// TestSendSplit: a window over MaxRequestBytes goes as one request per
// profile, each with the same resource.
func TestSendSplit(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTP} {
		t.Run(string(p), func(t *testing.T) {
			addr, got := startReceiver(t, p)
			w := hostWindow(t)
			whole, err := Convert(w)
			if err != nil {
				t.Fatal(err)
			}
			size := (&pprofile.ProtoMarshaler{}).ProfilesSize(whole)
			s := newSink(t, Options{Endpoint: addr, Protocol: p, MaxRequestBytes: size - 1})
			if err := s.Send(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			all := got.AllProfiles()
			if len(all) != len(w.Profiles) {
				t.Fatalf("the receiver got %d requests, want %d", len(all), len(w.Profiles))
			}
			ids := map[pprofile.ProfileID]bool{}
			for _, op := range whole.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().All() {
				ids[op.ProfileID()] = true
			}
			for i, pd := range all {
				one := w
				one.Profiles = w.Profiles[i : i+1]
				checkReceived(t, one, pd)
				// A retry of the window whole or split carries the same IDs.
				for _, op := range pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().All() {
					if !ids[op.ProfileID()] {
						t.Errorf("request %d: profile ID %s is not the whole window's", i, op.ProfileID())
					}
				}
			}
			got.Reset()
			s = newSink(t, Options{Endpoint: addr, Protocol: p, MaxRequestBytes: size})
			if err := s.Send(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			if n := len(got.AllProfiles()); n != 1 {
				t.Fatalf("a window of %d bytes under a limit of as many went as %d requests", size, n)
			}
		})
	}
}

// checkReceived compares what the receiver decoded with the window: per
// pprof profile and sample type one OTLP profile, in order, whose
// samples are the pprof samples with a non-zero value for that type, in
// order, each with the same value, the same stack (function names, leaf
// first, inlined frames included) and the same labels. It returns the
// resource attributes.
func checkReceived(t *testing.T, w forward.Window, pd pprofile.Profiles) map[string]string {
	t.Helper()
	if n := pd.ResourceProfiles().Len(); n != 1 {
		t.Fatalf("%d resource profiles, want 1", n)
	}
	rp := pd.ResourceProfiles().At(0)
	attrs := map[string]string{}
	for k, v := range rp.Resource().Attributes().All() {
		attrs[k] = v.AsString()
	}
	sp := rp.ScopeProfiles().At(0)
	if sp.Scope().Name() != ScopeName {
		t.Errorf("scope %q", sp.Scope().Name())
	}
	dic := pd.Dictionary()
	str := func(i int32) string { return dic.StringTable().At(int(i)) }
	n := 0
	for _, fp := range w.Profiles {
		p := fp.Profile
		for ti, st := range p.SampleType {
			if n >= sp.Profiles().Len() {
				t.Fatalf("%d OTLP profiles, want more", sp.Profiles().Len())
			}
			op := sp.Profiles().At(n)
			n++
			where := fmt.Sprintf("%s %s/%s", fp.Kind, st.Type, st.Unit)
			if got := str(op.SampleType().TypeStrindex()) + "/" + str(op.SampleType().UnitStrindex()); got != st.Type+"/"+st.Unit {
				t.Fatalf("%s: sample type %s", where, got)
			}
			if p.PeriodType != nil && (str(op.PeriodType().TypeStrindex()) != p.PeriodType.Type || op.Period() != p.Period) {
				t.Errorf("%s: period %s %d, want %s %d", where, str(op.PeriodType().TypeStrindex()), op.Period(), p.PeriodType.Type, p.Period)
			}
			if int64(op.Time()) != p.TimeNanos && p.TimeNanos != 0 || int64(op.DurationNano()) != p.DurationNanos && p.DurationNanos != 0 {
				t.Errorf("%s: time %d+%d, want %d+%d", where, op.Time(), op.DurationNano(), p.TimeNanos, p.DurationNanos)
			}
			j := 0
			for _, s := range p.Sample {
				if s.Value[ti] == 0 {
					continue
				}
				if j >= op.Samples().Len() {
					t.Fatalf("%s: %d samples, want more", where, op.Samples().Len())
				}
				os := op.Samples().At(j)
				j++
				if os.Values().Len() != 1 || os.Values().At(0) != s.Value[ti] {
					t.Fatalf("%s sample %d: values %v, want [%d]", where, j-1, os.Values().AsRaw(), s.Value[ti])
				}
				if got, want := otlpStack(t, dic, os.StackIndex()), pprofStack(s); !slices.Equal(got, want) {
					t.Fatalf("%s sample %d: stack\n got %q\nwant %q", where, j-1, got, want)
				}
				am, err := pprofile.FromAttributeIndices(dic.AttributeTable(), os, dic)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := attrString(am), labelString(s); got != want {
					t.Fatalf("%s sample %d: attributes %s, want %s", where, j-1, got, want)
				}
			}
			if j != op.Samples().Len() {
				t.Fatalf("%s: %d samples, want %d", where, op.Samples().Len(), j)
			}
		}
	}
	if n != sp.Profiles().Len() {
		t.Fatalf("%d OTLP profiles, want %d", sp.Profiles().Len(), n)
	}
	return attrs
}

func otlpStack(t *testing.T, dic pprofile.ProfilesDictionary, i int32) []string {
	var names []string
	for _, li := range dic.StackTable().At(int(i)).LocationIndices().All() {
		loc := dic.LocationTable().At(int(li))
		for _, ln := range loc.Lines().All() {
			fn := dic.FunctionTable().At(int(ln.FunctionIndex()))
			names = append(names, fmt.Sprintf("%s:%d", dic.StringTable().At(int(fn.NameStrindex())), ln.Line()))
		}
		if loc.Lines().Len() == 0 {
			names = append(names, fmt.Sprintf("%#x", loc.Address()))
		}
	}
	return names
}

func pprofStack(s *profile.Sample) []string {
	var names []string
	for _, l := range s.Location {
		for _, ln := range l.Line {
			names = append(names, fmt.Sprintf("%s:%d", ln.Function.Name, ln.Line))
		}
		if len(l.Line) == 0 {
			names = append(names, fmt.Sprintf("%#x", l.Address))
		}
	}
	return names
}

func attrString(m pcommon.Map) string {
	var kv []string
	for k, v := range m.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	slices.Sort(kv)
	return fmt.Sprint(kv)
}

// semconvKeys is what the eBPF profiles' sample labels are called in
// OTLP, written out here so that a wrong rename in the sink fails.
var semconvKeys = map[string]string{"pid": "process.pid", "tid": "thread.id", "thread": "thread.name"}

func wantKey(k string) string {
	if sc, ok := semconvKeys[k]; ok {
		return sc
	}
	return k
}

func labelString(s *profile.Sample) string {
	var kv []string
	for k, vs := range s.Label {
		v := vs[0]
		if len(vs) > 1 {
			v = fmt.Sprintf("[%q]", vs)
		}
		kv = append(kv, wantKey(k)+"="+v)
	}
	for k, vs := range s.NumLabel {
		v := strconv.FormatInt(vs[0], 10)
		if len(vs) > 1 {
			v = fmt.Sprint(vs)
		}
		kv = append(kv, wantKey(k)+"="+v)
	}
	slices.Sort(kv)
	return fmt.Sprint(kv)
}

func TestReceiverDown(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTP} {
		t.Run(string(p), func(t *testing.T) {
			addr := freeAddr(t)
			if p == ProtocolHTTP {
				addr = "http://" + addr
			}
			s := newSink(t, Options{Endpoint: addr, Protocol: p})
			err := s.Send(context.Background(), liveWindow(t))
			if !errors.Is(err, forward.ErrUnavailable) || errors.Is(err, forward.ErrInvalid) {
				t.Fatalf("receiver down: %v, want ErrUnavailable", err)
			}
			t.Log(err)
		})
	}
}

// TestRefused: the receiver's pipeline refuses the data for good
// (a permanent error: not retried) or for now (retried).
func TestRefused(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTP} {
		t.Run(string(p), func(t *testing.T) {
			addr, got := startReceiver(t, p)
			s := newSink(t, Options{Endpoint: addr, Protocol: p})
			got.setErr(consumererror.NewPermanent(errors.New("profile too old")))
			err := s.Send(context.Background(), liveWindow(t))
			if !errors.Is(err, forward.ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte("profile too old")) {
				t.Errorf("permanent refusal: %v, want ErrInvalid with the receiver's message", err)
			}
			got.setErr(errors.New("memory limit reached"))
			err = s.Send(context.Background(), liveWindow(t))
			if !errors.Is(err, forward.ErrUnavailable) {
				t.Errorf("transient refusal: %v, want ErrUnavailable", err)
			}
			got.setErr(nil)
			if err := s.Send(context.Background(), liveWindow(t)); err != nil {
				t.Errorf("after the refusals: %v", err)
			}
			if n := len(got.AllProfiles()); n != 1 {
				t.Errorf("the receiver kept %d requests, want 1", n)
			}
		})
	}
}

// TestMalformed: a body that is not an OTLP request is rejected by the
// receiver, and that is ErrInvalid.
func TestMalformed(t *testing.T) {
	addr, _ := startReceiver(t, ProtocolHTTP)
	s := newSink(t, Options{Endpoint: addr, Protocol: ProtocolHTTP, Compression: "none"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.post(ctx, []byte("\xff\xff\xff not protobuf"), 1)
	if !errors.Is(err, forward.ErrInvalid) {
		t.Fatalf("malformed body: %v, want ErrInvalid", err)
	}
	t.Log(err)

	gaddr, _ := startReceiver(t, ProtocolGRPC)
	gs := newSink(t, Options{Endpoint: gaddr, Protocol: ProtocolGRPC})
	var reply []byte
	err = gs.conn.Invoke(ctx, "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
		[]byte("\xff\xff\xff not protobuf"), &reply, grpcRawCodec())
	if err == nil {
		t.Fatal("the receiver took a malformed request")
	}
	if err := grpcError(err); !errors.Is(err, forward.ErrInvalid) {
		t.Fatalf("malformed gRPC request: %v, want ErrInvalid", err)
	}
}
