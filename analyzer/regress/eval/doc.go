// Package eval measures the regression detector (analyzer/regress) on
// simulated services with a known truth: how soon and how often it finds
// a new version's slowdown, whether it blames the slowed function first,
// and how often it raises findings where nothing regressed (null
// deploys, load changes, cost shifts, restarts).
//
// The simulator (model.go, sim.go) is a Go HTTP service: a call tree of
// named functions (net/http, the handler, encoding/json, database/sql,
// the GC, a ticker, the scheduler) and a long tail of small ones, each
// stack costing CPU per request and per second. Each 10-s window draws
// the requests (Poisson), each stack's expected samples under a
// per-window Gamma jitter (the overdispersion of real windows), the
// window's samples ~ Poisson(CPU seconds × Hz) spread over the stacks,
// and emits the regress.Window the daemon would: Counts (Self, Incl once
// per sample, Calls), the verdict summary, memory, requests. It is
// seeded and deterministic.
//
// A Scenario (scenario.go) is one service's history around t0: a deploy
// with or without a code change (Slow, Rename, Extract, Move), a load
// change, a service restart, an agent restart (a new detector replaying
// the windows of its Lookback). RunGrid (grid.go) runs the grid of them
// in parallel and Report.WriteMarkdown tabulates it beside the binomial
// model's expectation (power.go): what a detector of the design can at
// best see, so that a detector's results can be judged cell by cell.
//
// Run it with `go run ./analyzer/regress/eval/cmd/evalregress` (the full
// grid; -model prints the model's expectation alone). TestQuickGrid holds
// the detector to the targets on cells the model puts within
// reach; the harness itself is tested against a reference detector in
// harness_test.go.
package eval
