// Command bombpush measures what hostile pushes cost the ingest receiver:
// it serves a Handler and Receiver on loopback, as the agent does, pushes
// -n copies of a crafted profile (tiny gzipped, huge parsed: see
// internal/testprof) from -c clients at once, and prints the answers, what
// the receiver holds and the process's peak resident memory (VmHWM).
// Run it under a memory cap and a timeout:
//
//	go build -o /tmp/bombpush ./agent/ingest/bench/bombpush
//	(ulimit -v 4000000; timeout 300 /tmp/bombpush -n 24 -samples 3500000)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/perfhound/perfhound/internal/testprof"
)

func main() {
	n := flag.Int("n", 24, "pushes")
	c := flag.Int("c", 8, "clients pushing at once")
	samples := flag.Int("samples", 3_500_000, "samples per crafted profile")
	flag.Parse()
	if err := run(*n, *c, *samples); err != nil {
		fmt.Fprintln(os.Stderr, "bombpush:", err)
		os.Exit(1)
	}
}

func run(n, c, samples int) error {
	body := testprof.GzipBest(testprof.ManySamples(samples))
	fmt.Printf("profile: %d samples, %d bytes gzipped; %d pushes, %d at once\n", samples, len(body), n, c)

	recv, h := newIngest()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := h.Server("")
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	start := time.Now()
	statuses := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				status := push(url, i, body)
				mu.Lock()
				statuses[status]++
				fmt.Printf("%6.1fs push %2d: %s (peak RSS %s)\n", time.Since(start).Seconds(), i, status, vmHWM())
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	held := 0
	for _, o := range recv.Drain() {
		held += len(o.Profiles)
	}
	fmt.Printf("answers: %v\nheld by the receiver: %d profiles\ntook: %v\npeak RSS (VmHWM): %s\n",
		statuses, held, time.Since(start).Round(time.Millisecond), vmHWM())
	return nil
}

// push sends one profile as its own application and returns the answer's
// status line with the first words of its reason.
func push(url string, i int, body []byte) string {
	resp, err := http.Post(fmt.Sprintf("%s/ingest?name=bomb%d", url, i), "binary/octet-stream", bytes.NewReader(body))
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	words := strings.Fields(string(msg))
	if len(words) > 4 {
		words = words[:4]
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.Join(words, " "))
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
