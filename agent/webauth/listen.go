package webauth

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// UnixPrefix marks a Unix socket's path in a listen address.
const UnixPrefix = "unix:"

// Listen listens on addr: "host:port" for TCP, or "unix:/path" for a Unix
// socket that only its owner can connect to (mode 0600; a stale socket
// left by a killed server is replaced). local says whether only this host
// can reach it (a loopback address or a Unix socket): then Options'
// LoopbackHosts applies, and anything else deserves a warning.
func Listen(addr string) (ln net.Listener, local bool, err error) {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		ln, err := listenUnix(path)
		return ln, err == nil, err
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("listening: %w", err)
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	return ln, ok && ta.IP.IsLoopback(), nil
}

// LocalAddr says, before listening, whether addr can only be reached
// from this host: a Unix socket, or "localhost" or a loopback address with
// a port. The agent's config refuses any other address without a token.
// Listen's local result stays the final word: it sees the address bound
// (a "localhost" that resolved elsewhere is not local there).
func LocalAddr(addr string) bool {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		return path != ""
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && loopbackHost(host)
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("listening: %s needs a path, as in unix:/run/perfhound.sock", UnixPrefix)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	// bind made the socket with the umask's mode; connecting needs write
	// permission, which only the owner keeps. (The token still guards the
	// instant before the chmod.)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listening: %w", err)
	}
	return ln, nil
}

// removeStale removes a socket at path that nothing listens on any more,
// and refuses to touch anything else there.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listening on %s: it exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listening on %s: another server is listening there", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listening: removing the stale socket: %w", err)
	}
	return nil
}
