// Command workload is the eBPF tests' subject: one known behaviour per
// mode, each bounded by -duration and exiting by itself.
//
//	workload -mode spin    burn CPU in spinHot
//	workload -mode sleep   sleep in 100 ms naps (state S)
//	workload -mode fsync   write 4 KiB and fsync, over and over (state D)
//	workload -mode direct  O_DIRECT 4 KiB reads at random offsets
//	workload -mode tcp     request/response with -addr, one connection per request
//	workload -mode faults  touch fresh pages in touchPages
//	workload -mode hash    SHA-256 of 64 KiB blocks; prints blocks hashed (throughput)
//	workload -mode serve   accept on -addr; read each connection to its end, answer "ok"
//	workload -mode upload  send -bytes to -addr, one connection each, and wait for "ok"
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	mode := flag.String("mode", "spin", "spin, sleep, fsync, direct, tcp or faults")
	duration := flag.Duration("duration", 3*time.Second, "how long to run")
	dir := flag.String("dir", os.TempDir(), "directory for fsync and direct files")
	addr := flag.String("addr", "", "server address for -mode tcp, serve and upload")
	size := flag.Int("bytes", 256<<10, "bytes per connection for -mode upload")
	flag.Parse()
	deadline := time.Now().Add(*duration)
	var err error
	switch *mode {
	case "spin":
		fmt.Println(spinHot(deadline))
	case "sleep":
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	case "fsync":
		err = fsyncLoop(*dir, deadline)
	case "direct":
		err = directReads(*dir, deadline)
	case "tcp":
		err = tcpClient(*addr, deadline)
	case "faults":
		fmt.Println(touchPages(deadline))
	case "hash":
		fmt.Println(hashBlocks(deadline))
	case "serve":
		err = serve(*addr, deadline)
	case "upload":
		err = upload(*addr, *size, deadline)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

//go:noinline
func spinHot(deadline time.Time) uint64 {
	x := uint64(1)
	for i := 0; ; i++ {
		for j := 0; j < 1<<20; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if time.Now().After(deadline) {
			return x
		}
	}
}

func fsyncLoop(dir string, deadline time.Time) error {
	f, err := os.CreateTemp(dir, "workload-fsync-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		if _, err := f.Write(buf); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

func directReads(dir string, deadline time.Time) error {
	const size = 64 << 20
	name := filepath.Join(dir, fmt.Sprintf("workload-direct-%d", os.Getpid()))
	defer os.Remove(name)
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for off := 0; off < size; off += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	buf := alignedBlock(4096)
	for time.Now().Before(deadline) {
		off := int64(rand.IntN(size/4096)) * 4096
		if _, err := syscall.Pread(fd, buf, off); err != nil {
			return err
		}
	}
	return nil
}

// alignedBlock returns n bytes aligned to 4096, as O_DIRECT requires.
func alignedBlock(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)
	return b[off%4096 : off%4096+n]
}

func tcpClient(addr string, deadline time.Time) error {
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte("GET\n")); err != nil {
			c.Close()
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			c.Close()
			return err
		}
		c.Close()
	}
	return nil
}

//go:noinline
func touchPages(deadline time.Time) int {
	n := 0
	for time.Now().Before(deadline) {
		b, err := syscall.Mmap(-1, 0, 16<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			panic(err)
		}
		// One fault per 4 KiB page even where transparent huge pages
		// are on (they would make it one per 2 MiB).
		syscall.Madvise(b, 15) // MADV_NOHUGEPAGE
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
			n++
		}
		syscall.Munmap(b)
	}
	return n
}

// hashBlocks hashes 64 KiB blocks until the deadline and returns how many:
// a CPU-bound throughput to compare with and without collection.
func hashBlocks(deadline time.Time) int {
	block := make([]byte, 64<<10)
	n := 0
	for time.Now().Before(deadline) {
		for range 16 {
			sum := sha256.Sum256(block)
			block[0] = sum[0]
			n++
		}
	}
	return n
}

// serve answers uploads until the deadline.
func serve(addr string, deadline time.Time) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	time.AfterFunc(time.Until(deadline), func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil // closed at the deadline
		}
		go func() {
			defer c.Close()
			c.SetDeadline(deadline)
			io.Copy(io.Discard, c)
			c.Write([]byte("ok\n"))
		}()
	}
}

// upload sends size bytes per connection until the deadline.
func upload(addr string, size int, deadline time.Time) error {
	payload := make([]byte, size)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
		if err != nil {
			if time.Now().After(deadline) {
				return nil
			}
			return err
		}
		c.SetDeadline(deadline.Add(5 * time.Second))
		if _, err := c.Write(payload); err != nil {
			c.Close()
			return err
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
	return nil
}
