package collect

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// tcpServerEnv makes this test binary, run again by
// TestProcessTCPAcceptedFromOutside, a TCP server for it.
const tcpServerEnv = "PERFHOUND_TEST_TCP_SERVER"

// TestProcessTCPServerChild is not a test: it is the server child of
// TestProcessTCPAcceptedFromOutside, and returns at once otherwise. It
// prints its address, reads one connection to the end and exits.
func TestProcessTCPServerChild(t *testing.T) {
	if os.Getenv(tcpServerEnv) == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", l.Addr())
	c, err := l.Accept()
	if err != nil {
		os.Exit(1)
	}
	io.Copy(io.Discard, c)
	os.Exit(0)
}

// TestProcessTCPConnectedToItself watches this test process while it is a
// client of itself over loopback: the connection runs between two of the
// target's own sockets and counts once, at the end that connected; the
// target does not become a server of itself.
func TestProcessTCPConnectedToItself(t *testing.T) {
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

	got := watchTCP(t, os.Getpid(), client)
	if got.sent < tcpPayload/2 {
		t.Errorf("active sent %.0f bytes, want about %d", got.sent, tcpPayload)
	}
	if got.active != 1 || got.passive != 0 || got.passiveReceived != 0 {
		t.Errorf("%v active and %v passive connections, %.0f bytes received as passive; want 1, 0 and 0: the target is its own client, not a server",
			got.active, got.passive, got.passiveReceived)
	}
}

// TestProcessTCPAcceptedFromOutside watches a server child while this
// test, outside the child's process tree, is its client: the child's
// connection is passive and carries what the test sent.
func TestProcessTCPAcceptedFromOutside(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessTCPServerChild$")
	cmd.Env = append(os.Environ(), tcpServerEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("server child said %q (%v)", line, err)
	}
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	got := watchTCP(t, cmd.Process.Pid, client)
	if got.passive != 1 || got.active != 0 {
		t.Errorf("%v passive and %v active connections, want 1 and 0", got.passive, got.active)
	}
	if got.passiveReceived < tcpPayload/2 {
		t.Errorf("passive received %.0f bytes, want about %d", got.passiveReceived, tcpPayload)
	}
}

const tcpPayload = 4 << 20

// tcpSeen is what process.tcp said of a target over two readings: the
// connections open at the second, and the bytes between them.
type tcpSeen struct {
	active, passive       float64
	sent, passiveReceived float64
}

// watchTCP reads process.tcp of pid, writes tcpPayload bytes on client,
// waits until the peer has acknowledged them, and reads it again.
func watchTCP(t *testing.T, pid int, client net.Conn) tcpSeen {
	t.Helper()
	s, err := processFactory(newProcessTCP)(Env{}.withDefaults(), Target{PID: pid})
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
	if _, err := client.Write(make([]byte, tcpPayload)); err != nil {
		t.Fatal(err)
	}
	// Write returns once the data is in the socket's buffer; it is
	// acknowledged when the peer has read it, which waits on nothing but
	// the reader being scheduled.
	deadline := time.Now().Add(30 * time.Second)
	for unacked(t, client) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t1 := time.Now()
	rec.Sample(ctx, []Sampler{s}, t1)

	last := func(name observation.SeriesName, labels map[string]string) float64 {
		for _, se := range rec.Series() {
			if se.Name != name || !hasAll(se.Labels, labels) || len(se.Points) == 0 {
				continue
			}
			return se.Points[len(se.Points)-1].Value
		}
		t.Fatalf("no %s%v series", name, labels)
		return 0
	}
	secs := t1.Sub(t0).Seconds() // rates are over the readings' interval
	return tcpSeen{
		active:          last(observation.ProcessTCPConns, map[string]string{"role": "active"}),
		passive:         last(observation.ProcessTCPConns, map[string]string{"role": "passive"}),
		sent:            secs * last(observation.ProcessTCPBytes, map[string]string{"role": "active", "direction": "sent"}),
		passiveReceived: secs * last(observation.ProcessTCPBytes, map[string]string{"role": "passive", "direction": "received"}),
	}
}

// unacked is the bytes a connection has sent that its peer has not
// acknowledged (SIOCOUTQ), from the kernel rather than a guess of time.
func unacked(t *testing.T, c net.Conn) int {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var ierr error
	raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}
