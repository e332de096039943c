// Package obstest loads recorded observations for tests: the real windows
// of fixtures/goservice that the agent stored (agent/api/testdata/
// goservice-windows, exported with agent/daemon/bench/storesize), which
// the API's, the daemon's and the regression detector's tests share.
package obstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// GoserviceWindows is the glob of the recorded windows, from the module's
// root: a test prefixes the path up to it ("../../" + GoserviceWindows).
const GoserviceWindows = "agent/api/testdata/goservice-windows/window-*.obs"

// Windows loads the observations the glob names, in name order (the
// windows' time order), failing the test when there are fewer than min.
func Windows(tb testing.TB, glob string, min int) []*observation.Observation {
	tb.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) < min {
		tb.Fatalf("%d recorded windows in %s, want %d or more: %v", len(files), glob, min, err)
	}
	out := make([]*observation.Observation, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		o, err := observation.Unmarshal(b, observation.LoadOptions{})
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		out = append(out, o)
	}
	return out
}
