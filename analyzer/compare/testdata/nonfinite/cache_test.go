// Package nonfinite is a real benchmark whose custom metrics are not
// finite: a cache's hit ratio is 0/0 (NaN) when nothing was looked up, and
// its misses per hit are n/0 (+Inf) when nothing hit, -Inf for a negative
// over zero. `go test -bench` prints them as NaN, +Inf and -Inf, which is
// what perfhound compare must survive (record.sh writes the outputs).
package nonfinite

import "testing"

type cache struct{ m map[int]int }

func (c *cache) get(k int) (int, bool) { v, ok := c.m[k]; return v, ok }

// lookups looks up n keys in c, counting hits and misses.
func lookups(b *testing.B, c *cache, n int) {
	var hits, misses float64
	for b.Loop() {
		for k := range n {
			if _, ok := c.get(k); ok {
				hits++
			} else {
				misses++
			}
		}
	}
	b.ReportMetric(hits/(hits+misses), "hits/lookup")
	b.ReportMetric(misses/hits, "misses/hit")
	b.ReportMetric((hits-misses)/(hits*misses), "balance/op")
}

// BenchmarkWarm hits half the time: every metric finite.
func BenchmarkWarm(b *testing.B) {
	c := &cache{m: map[int]int{}}
	for k := range 32 {
		c.m[2*k] = k
	}
	lookups(b, c, 64)
}

// BenchmarkCold never hits: misses/hit is +Inf, balance/op -Inf.
func BenchmarkCold(b *testing.B) { lookups(b, &cache{m: map[int]int{}}, 64) }

// BenchmarkIdle looks nothing up: hits/lookup and misses/hit are NaN.
func BenchmarkIdle(b *testing.B) { lookups(b, &cache{m: map[int]int{}}, 0) }
