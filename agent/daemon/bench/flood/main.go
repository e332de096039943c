// Command flood pushes to an agent's /ingest as fast as it answers, from
// -c clients for -d, each client as -apps applications in turn, and prints
// the answers by status. The body is either a request a real SDK made
// (-capture, as agent/ingest/testdata holds: its query, content type and
// body are replayed, the application's name changed) or a pprof file sent
// as pprof (-pprof). bounds.sh uses it for the agent's memory under an
// ingest flood:
//
//	go build -o /tmp/flood ./agent/daemon/bench/flood
//	timeout 120 /tmp/flood -url http://127.0.0.1:7474 -c 32 -d 60s -pprof fixtures/profiles/compile-cpu.pb.gz
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// request is what every push sends, but for the application's name.
type request struct {
	query       url.Values
	contentType string
	body        []byte
}

func main() {
	base := flag.String("url", "", "the agent's address, e.g. http://127.0.0.1:7474 (required)")
	c := flag.Int("c", 32, "clients pushing at once")
	apps := flag.Int("apps", 4, "applications each client pushes as, in turn")
	d := flag.Duration("d", time.Minute, "how long to push")
	capture := flag.String("capture", "", "replay this captured SDK request (agent/ingest/testdata/*.http)")
	pprofFile := flag.String("pprof", "", "push this pprof file (gzipped or not) as format=pprof")
	flag.Parse()
	if *base == "" || (*capture == "") == (*pprofFile == "") {
		fmt.Fprintln(os.Stderr, "usage: flood -url URL (-capture FILE | -pprof FILE) [-c N] [-apps N] [-d DURATION]")
		os.Exit(2)
	}
	req, err := load(*capture, *pprofFile)
	if err == nil {
		err = run(*base, req, *c, *apps, *d)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func load(capture, pprofFile string) (request, error) {
	if pprofFile != "" {
		b, err := os.ReadFile(pprofFile)
		if err != nil {
			return request{}, err
		}
		now := time.Now()
		q := url.Values{"format": {"pprof"}, "from": {fmt.Sprint(now.Add(-10 * time.Second).Unix())}, "until": {fmt.Sprint(now.Unix())}}
		return request{query: q, contentType: "application/octet-stream", body: b}, nil
	}
	f, err := os.Open(capture)
	if err != nil {
		return request{}, err
	}
	defer f.Close()
	r, err := http.ReadRequest(bufio.NewReader(f))
	if err != nil {
		return request{}, fmt.Errorf("reading %s: %w", capture, err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return request{}, fmt.Errorf("reading %s: %w", capture, err)
	}
	return request{query: r.URL.Query(), contentType: r.Header.Get("Content-Type"), body: b}, nil
}

func run(base string, req request, c, apps int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	name, labels, _ := strings.Cut(req.query.Get("name"), "{")
	if name == "" {
		name = "flood"
	}
	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c {
		wg.Go(func() {
			client := &http.Client{Timeout: 2 * time.Minute}
			for n := 0; ctx.Err() == nil; n++ {
				q := maps.Clone(req.query)
				app := fmt.Sprintf("%s-%d-%d", name, i, n%apps)
				if labels != "" {
					app += "{" + labels
				}
				q.Set("name", app)
				status := push(ctx, client, base+"/ingest?"+q.Encode(), req)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := 0
	for _, k := range slices.Sorted(maps.Keys(statuses)) {
		fmt.Printf("%8d  %s\n", statuses[k], k)
		total += statuses[k]
	}
	fmt.Printf("%d pushes of %d bytes from %d clients in %.0f s\n", total, len(req.body), c, time.Since(start).Seconds())
	return nil
}

// push sends one push and returns its status and the first words of the
// answer.
func push(ctx context.Context, client *http.Client, u string, req request) string {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(req.body))
	if err != nil {
		return "error: " + err.Error()
	}
	r.Header.Set("Content-Type", req.contentType)
	resp, err := client.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			return "cut short at the end"
		}
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	words := strings.Fields(string(msg))
	if len(words) > 5 {
		words = words[:5]
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.Join(words, " "))
}
