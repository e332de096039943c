package identity

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"

	psnet "github.com/shirou/gopsutil/v4/net"
)

// ListenerPID finds the process listening on the URL's port when the URL
// names this host (a loopback address, or one of this host's own), from
// the sockets in /proc/net/tcp{,6} and the processes' fds holding them.
func ListenerPID(ctx context.Context, raw string) (int, bool) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0, false
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0, false
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, u.Hostname())
	if err != nil {
		return 0, false
	}
	var ips []net.IP
	for _, a := range addrs {
		if local(a.IP) {
			ips = append(ips, a.IP)
		}
	}
	if len(ips) == 0 {
		return 0, false
	}
	conns, err := psnet.ConnectionsWithContext(ctx, "tcp")
	if err != nil {
		return 0, false
	}
	for _, c := range conns {
		if c.Status != "LISTEN" || int(c.Laddr.Port) != p || c.Pid <= 0 {
			continue
		}
		l := net.ParseIP(c.Laddr.IP)
		if l == nil {
			continue
		}
		for _, ip := range ips {
			if l.IsUnspecified() || l.Equal(ip) {
				return int(c.Pid), true
			}
		}
	}
	return 0, false
}

// local reports whether ip is loopback or one of this host's addresses.
func local(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
