package diagnose

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/perfhound/perfhound/agent/collect"
)

// servesItself reports whether process pid is the program whose pprof
// endpoint is at raw: net/http/pprof's /debug/pprof/cmdline is the
// serving program's arguments, NUL-separated, as /proc/PID/cmdline is.
func servesItself(ctx context.Context, raw string, env collect.Env, pid int) bool {
	base := raw
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if i := strings.Index(base, "/debug/pprof"); i >= 0 {
		base = base[:i]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/debug/pprof/cmdline", nil)
	if err != nil {
		return false
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	served, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || resp.StatusCode != http.StatusOK {
		return false
	}
	procfs := env.ProcDir()
	own, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", procfs, pid))
	if err != nil {
		return false
	}
	return strings.TrimRight(string(served), "\x00") == strings.TrimRight(string(own), "\x00")
}
