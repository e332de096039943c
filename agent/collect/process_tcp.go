package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.tcp: the target's TCP connections (its own and its descendants')
// and the data they carried,
// from the kernel's socket diagnostics (sock_diag netlink: each socket's
// tcp_info) joined to the sockets among the target's file descriptors.
//
//	process.tcp.connections{role="active"|"passive"}   established, "count"
//	process.tcp.bytes{role,direction="received"|"sent"} bytes/s (sent: acknowledged by the peer)
//	process.tcp.busy{role}                              seconds/s with data in flight, waiting on the peer's acks
//
// A connection is passive when its local port is one the target listens
// on (it accepted it), active otherwise (it connected); one between two of
// the target's own processes counts once, as active. The split matters:
// a client waiting on its connections is waiting on the network; a server
// waiting on its clients is waiting for work. An event loop waits on both
// in epoll, where the thread's stack cannot say which, so these series
// are what tells a network-bound event loop from an idle one.
//
// Connections are followed by inode across readings, so a connection that
// opens and closes between two readings is missed and one that closes
// loses its last interval. The sockets are read in the target's network
// namespace (a container's), which needs CAP_SYS_ADMIN when it is not
// perfhound's own. Reading another user's descriptors needs
// CAP_SYS_PTRACE.

func init() { Register(observation.SignalProcessTCP, processFactory(newProcessTCP)) }

type processTCP struct {
	w      *procWatch
	last   map[uint32]sockCounters // by socket inode
	sum    map[string]float64      // running totals by series key, for Counter
	primed bool                    // the first reading, the baseline, is taken
}

type sockCounters struct{ received, acked, busyMicros uint64 }

// endpoint is a socket's address and port: a listener's, or one end of
// a connection.
type endpoint struct {
	ip   string
	port uint16
}

func newProcessTCP(w *procWatch) (Sampler, error) {
	return &processTCP{w: w, last: map[uint32]sockCounters{}, sum: map[string]float64{}}, nil
}

func (*processTCP) Name() observation.Signal { return observation.SignalProcessTCP }

func (s *processTCP) Sample(_ context.Context, rec *Recorder) error {
	if st, ok, err := s.w.read(); !ok || st.state == 'Z' {
		return err // a zombie's sockets are closed
	}
	inodes, err := s.socketInodes()
	if errors.Is(err, fs.ErrPermission) {
		rec.Missing(observation.SignalProcessTCP, fmt.Sprintf("%s: permission denied: another user's descriptors need root or CAP_SYS_PTRACE", s.w.path("fd")))
		return nil
	}
	if err != nil {
		return s.w.failed(err)
	}
	var socks []*netlink.InetDiagTCPInfoResp
	if len(inodes) > 0 {
		// The dump is of every TCP socket of the namespace: not made for
		// a target that holds none.
		socks, err = s.tcpSockets()
	}
	if err != nil {
		rec.Missing(observation.SignalProcessTCP, err.Error())
		return nil
	}
	// Every listener of the namespace, not only the target's: a server
	// that forks a child per connection (postgres, sshd) closes the
	// listener in the child, whose connection was still accepted.
	listening := map[endpoint]bool{}
	for _, sk := range socks {
		if sk.InetDiagMsg.State == tcpListen {
			listening[endpoint{sk.InetDiagMsg.ID.Source.String(), sk.InetDiagMsg.ID.SourcePort}] = true
		}
	}
	accepted := func(m *netlink.Socket) bool {
		port := m.ID.SourcePort
		if listening[endpoint{m.ID.Source.String(), port}] {
			return true
		}
		for _, any := range []string{"0.0.0.0", "::"} {
			if listening[endpoint{any, port}] {
				return true
			}
		}
		return false
	}
	// The tree's own connections, by their four addresses: one whose
	// other end is also the tree's runs between two of its processes (a
	// command that starts its own server), and is counted once, at the end
	// that connected. Counted at both, it would make a client look like a
	// server of itself. All four, since the kernel gives one local port to
	// connections to different peers.
	own := map[[2]endpoint]bool{}
	for _, sk := range socks {
		if m := sk.InetDiagMsg; inodes[m.INode] && m.State != tcpListen {
			own[[2]endpoint{{m.ID.Source.String(), m.ID.SourcePort}, {m.ID.Destination.String(), m.ID.DestinationPort}}] = true
		}
	}
	conns := map[string]float64{"active": 0, "passive": 0}
	seen := make(map[uint32]sockCounters, len(s.last))
	for _, sk := range socks {
		m := sk.InetDiagMsg
		if !inodes[m.INode] || m.State == tcpListen || sk.TCPInfo == nil {
			continue
		}
		role := "active"
		if accepted(m) {
			if own[[2]endpoint{{m.ID.Destination.String(), m.ID.DestinationPort}, {m.ID.Source.String(), m.ID.SourcePort}}] {
				continue // the tree is its own client: counted at the client's end
			}
			role = "passive"
		}
		if m.State == tcpEstablished {
			conns[role]++
		}
		now := sockCounters{received: sk.TCPInfo.Bytes_received, acked: sk.TCPInfo.Bytes_acked, busyMicros: sk.TCPInfo.Busy_time}
		seen[m.INode] = now
		prev, known := s.last[m.INode]
		if !known {
			// Opened since the last reading: all it did is new (the
			// first reading of the window only sets the baseline).
			prev = sockCounters{}
			if !s.primed {
				prev = now
			}
		}
		s.add(role, "received", now.received, prev.received)
		s.add(role, "sent", now.acked, prev.acked)
		s.add(role, "busy", now.busyMicros, prev.busyMicros)
	}
	s.last = seen
	for _, role := range []string{"active", "passive"} {
		rec.Gauge(observation.ProcessTCPConns, map[string]string{"role": role}, conns[role])
		for _, dir := range []string{"received", "sent"} {
			rec.Counter(observation.ProcessTCPBytes, map[string]string{"role": role, "direction": dir}, s.sum[role+"|"+dir])
		}
		rec.Counter(observation.ProcessTCPBusy, map[string]string{"role": role}, s.sum[role+"|busy"]/1e6)
	}
	s.primed = true
	return nil
}

// add grows a running total by a counter's increase (none when the
// counter went back: another socket reusing the inode).
func (s *processTCP) add(role, what string, now, prev uint64) {
	if now > prev {
		s.sum[role+"|"+what] += float64(now - prev)
	}
}

// TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpListen      = 10
)

// socketInodes lists the inodes of the sockets among the descriptors of
// the target and its descendants (the eBPF collectors follow children
// too: a shell, npm or a pre-fork master runs the process that talks).
// Only the target's own descriptors being unreadable is an error.
func (s *processTCP) socketInodes() (map[uint32]bool, error) {
	out := map[uint32]bool{}
	pids := append([]string{strconv.Itoa(s.w.pid)}, s.w.members()...)
	for i := range pids {
		dir := s.w.env.proc(pids[i], "fd")
		entries, err := os.ReadDir(dir)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue
		}
		for _, e := range entries {
			link, err := os.Readlink(dir + "/" + e.Name())
			if err != nil {
				continue // closed meanwhile
			}
			if v, ok := strings.CutPrefix(link, "socket:["); ok {
				if n, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 32); err == nil {
					out[uint32(n)] = true
				}
			}
		}
	}
	return out, nil
}

// tcpSockets dumps the TCP sockets, IPv4 and IPv6, with their tcp_info, in
// the target's network namespace.
func (s *processTCP) tcpSockets() ([]*netlink.InetDiagTCPInfoResp, error) {
	h, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []*netlink.InetDiagTCPInfoResp
	for _, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
		socks, err := h.SocketDiagTCPInfo(family)
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

// handle is a netlink handle in the target's network namespace.
func (s *processTCP) handle() (*netlink.Handle, error) {
	own, err1 := os.Readlink("/proc/self/ns/net")
	theirs, err2 := os.Readlink(s.w.path("ns", "net"))
	if err1 != nil || err2 != nil || own == theirs {
		return netlink.NewHandle(unix.NETLINK_SOCK_DIAG)
	}
	ns, err := netns.GetFromPath(s.w.path("ns", "net"))
	if err != nil {
		return nil, fmt.Errorf("the target's network namespace: %w (needs CAP_SYS_ADMIN)", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag in the target's network namespace: %w", err)
	}
	return h, nil
}
