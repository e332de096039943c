package regress

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perfhound/perfhound/analyzer/verdict"
)

var trendEval = flag.Bool("trendeval", false, "run the trends' evaluation (minutes): null service-days and detection of rises")

// TestTrendEval is the evaluation behind the trend rules' defaults:
//
//	go test ./analyzer/regress -run TestTrendEval -trendeval -v -timeout 30m
//
// It replays 120 simulated service-days without a change (0.1, 0.5 and 2
// cores, with and without requests, jitter of the mix from 7% to 22% a
// window, every rule on) and wants no finding; then steps of 10% and 20%
// of main.parse (9% of the CPU) at 0.25 to 2 cores, ten seeds each, and
// prints how many were found within 3 hours, how fast, and whether any
// other function was blamed (none may be).
func TestTrendEval(t *testing.T) {
	if !*trendEval {
		t.Skip("run with -trendeval")
	}
	days, false_ := 0, 0
	for _, cores := range []float64{0.1, 0.5, 2} {
		for seed := uint64(1000); seed < 1040; seed++ {
			s := newTrendSim(seed, serviceTree())
			s.cores = cores
			if seed%2 == 0 {
				s.requests = 100 * cores
			}
			s.shape = []float64{200, 50, 20}[seed%3]
			s.loads = func(time.Time) map[verdict.Class]float64 {
				return map[verdict.Class]float64{verdict.ClassCPU: cores, verdict.ClassIO: 0.15, verdict.ClassContention: 0.1, verdict.ClassMemory: 0.05 * cores}
			}
			s.runQueue = func(time.Time) float64 { return 0.02 * cores }
			s.mem = func(time.Time) float64 { return 300 << 20 * (1 + 0.02*s.rng.NormFloat64()) }
			ev := s.run(newTrends(DefaultTrendOptions()), 0, s.windows(24*time.Hour))
			days++
			for _, f := range raised(ev) {
				false_++
				t.Errorf("no change, %.1f cores, seed %d:%s", cores, seed, describe([]Finding{f}))
			}
		}
	}
	t.Logf("no change: %d service-days, %d findings", days, false_)

	var table strings.Builder
	table.WriteString("| rise | cores | found in 3 h | median time to detect | other function blamed |\n|---|---|---|---|---|\n")
	for _, rise := range []float64{1.1, 1.2} {
		for _, cores := range []float64{0.25, 0.5, 1, 2} {
			var ttd []time.Duration
			wrong := 0
			for seed := uint64(400); seed < 410; seed++ {
				s := newTrendSim(seed, serviceTree())
				s.cores = cores
				parse := s.fnIndex("main.parse")
				change := simEpoch.Add(3 * time.Hour)
				s.mult = func(fn int, at time.Time) float64 {
					if fn == parse && !at.Before(change) {
						return rise
					}
					return 1
				}
				for _, f := range raised(s.run(newTrends(DefaultTrendOptions()), 0, s.windows(6*time.Hour))) {
					if f.Function == "main.parse" {
						ttd = append(ttd, f.DetectedAt.Sub(change))
					} else {
						wrong++
						t.Errorf("x%.1f at %.2f cores, seed %d, blamed%s", rise, cores, seed, describe([]Finding{f}))
					}
				}
			}
			slices.Sort(ttd)
			med := "-"
			if len(ttd) > 0 {
				med = ttd[len(ttd)/2].String()
			}
			fmt.Fprintf(&table, "| +%.0f%% | %.2f | %d/10 | %s | %d |\n", 100*(rise-1), cores, len(ttd), med, wrong)
			if rise == 1.2 && len(ttd) < 9 {
				t.Errorf("a rise of 20%% at %.2f cores found %d times in 10", cores, len(ttd))
			}
		}
	}
	t.Logf("main.parse (9%% of the CPU) stepping up at 19 Hz:\n%s", table.String())
}
