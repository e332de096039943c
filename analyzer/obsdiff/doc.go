// Package obsdiff compares two observations of a target, a base and a head,
// through their verdicts: which class the target is bound by, how much
// load each class carries, where the threads' time moved, which functions
// of each profile kind moved most, the USE table and latency percentiles,
// and the head's priorities marked against the base's.
//
// It is what `perfhound compare DIR_A DIR_B` runs when both are saved
// observations. Like the rest of analyzer/ it is pure: Compare reads the
// observations it is handed and nothing else.
//
// # Regression
//
// A saved observation is one window, so there is no replicate to test a
// difference against: the rule works on the verdicts' loads (threads bound
// per second of wall time) with two floors, and says why in words
// (Diff.Regressions, Diff.Improvements).
//
//   - The class: the head is bound by a class the base was not bound by
//     (none → cpu, cpu → io) is a regression; the head bound by nothing
//     where the base was bound is an improvement.
//   - A class's load: it grew by more than Options.Threshold of the base's
//     load (relative, 5% by default, --threshold) and by at least
//     Options.MinLoadChange threads (absolute, default the verdict's
//     MinLoad, 0.2: the least load that can make a class a bottleneck).
//     A fall by as much both ways is an improvement.
//
// Options.FailOn (--fail-on) regression fails on any regression, change on
// any regression or improvement (a class or load change beyond the floors
// either way), never on nothing. Near a tie between two classes the class
// can flip between windows with little change of load: the confidences,
// shown beside the classes, say when. docs/compare-observations.md has
// the whole rule and the JSON schema.
//
// # Functions
//
// For each profile kind and source both sides have (eBPF cpu and offcpu,
// pprof cpu, mutex, block, allocs, heap...), analyzer/profdiff reduces
// each side to flat, cum and own cost per function. Costs are normalised
// per second of each profile's window (time in seconds, so 1.0 is one
// thread), so windows of different lengths compare; snapshots (heap in
// use, goroutines) compare as they are. Functions are ranked by the size
// of the change of their own cost (flat plus the library code they called),
// which charges the kernel's and runtime's work to the program's function
// that asked for it. One profile a side has no replicate for a test of
// significance, so none is made: a change is a difference, not a verdict.
package obsdiff
