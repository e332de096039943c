package collect

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// TestProcessTCP watches this test process while it is both a server and
// a client of itself over loopback: the bytes it sends as a client show
// as the active role's, the bytes its accepted connection receives as the
// passive role's.
func TestProcessTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	s, err := processFactory(newProcessTCP)(Env{}.withDefaults(), Target{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	ctx := context.Background()
	t0 := time.Now()
	rec.Sample(ctx, []Sampler{s}, t0)
	if missing := rec.MissingList(); len(missing) > 0 {
		t.Skipf("socket diagnostics unavailable here: %v", missing)
	}
	const payload = 4 << 20
	if _, err := client.Write(make([]byte, payload)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // acknowledged and read
	t1 := time.Now()
	rec.Sample(ctx, []Sampler{s}, t1)

	rate := func(name observation.SeriesName, labels map[string]string) float64 {
		for _, se := range rec.Series() {
			if se.Name != name || !hasAll(se.Labels, labels) || len(se.Points) == 0 {
				continue
			}
			return se.Points[len(se.Points)-1].Value
		}
		t.Fatalf("no %s%v series", name, labels)
		return 0
	}
	secs := t1.Sub(t0).Seconds() // the rates are over the readings' interval
	sent := rate("process.tcp.bytes", map[string]string{"role": "active", "direction": "sent"})
	got := rate("process.tcp.bytes", map[string]string{"role": "passive", "direction": "received"})
	if sent*secs < payload/2 || got*secs < payload/2 {
		t.Errorf("active sent %.0f B/s, passive received %.0f B/s over %.2fs; want about %d bytes each", sent, got, secs, payload)
	}
	if n := rate("process.tcp.connections", map[string]string{"role": "active"}); n != 1 {
		t.Errorf("%v active connections, want 1", n)
	}
	if n := rate("process.tcp.connections", map[string]string{"role": "passive"}); n != 1 {
		t.Errorf("%v passive connections, want 1", n)
	}
}
