// Package regress finds regressions in a service's stored windows: a new
// version whose functions cost more per unit of the service's work than
// its predecessor's (Kind version), a function or resource that drifts
// within a version (drift), a class that changes for good (class), and
// memory that climbs (leak).
//
// It is pure, like the rest of analyzer/: a Detector is a state machine
// fed one Window at a time, in time order, and nothing else. The agent
// feeds it every stored window as it is stored, and after a restart
// replays the store's recent windows into a new one, so that what it
// finds depends on the stored windows only, never on when the agent ran.
// The evaluation harness (regress/eval) feeds it simulated windows with a
// known truth.
//
// # A new version against its predecessor
//
// A window (WindowOf) is a service's on-CPU samples of one stored window
// (10 s at the agent's defaults), from the eBPF sampler when it ran, else
// from the Go service's own CPU profile, else from what an SDK pushed;
// windows of two sources are never pooled. It counts the samples of the
// service's own code, in user space: the kernel's part of a service's
// CPU (interrupts run in whatever task is current, preemptions, system
// calls waking and waiting on contended run queues) moves with how busy
// the machine is, not with the version (inKernel says what was
// measured), and a Go profile or an SDK's push has no kernel frames to
// compare with. A service whose samples are all in the kernel (a kernel
// thread's) is counted whole. For every function it counts
// the samples the function is the leaf of (its own code) and the samples
// it is anywhere on the stack of, once however often it recurs (its
// cumulative cost: it and everything it calls).
//
// When a window of a version not seen before arrives (a new build ID or
// version label), that version's windows from then on are the head and
// the previous version's last windows are the base: the blocks of 5
// minutes, aligned to the clock, that hold its last 30 minutes (30 to 35
// minutes), provided it ran in the last 30 minutes (MaxBaseAge). The head
// leaves out its first 20 seconds (Warmup: a process's start-up is not
// its steady cost). A restart of the same version is the same version: it
// is not compared with itself. A version that comes back after another
// one ran (a rollback) is a new deployment, compared with the one it
// replaced.
//
// The head is tested at looks, 1, 2, 3, 5, 10, 20 and 30 minutes after
// the deployment; a look needs 200 samples and 3 windows a side
// (MinSamples, MinWindows), else it waits for the next: it does not
// guess. After the last look the version is settled.
//
// # What is compared
//
// A function's cost is its share of the service's samples (its share of
// the service's CPU, FBDetect's gCPU), or, when every window of both
// sides counts requests (Window.Requests: the series service.requests,
// from the counter a Go service's config names), its
// CPU per request. A share does not move with the load, a sum of CPU time
// does.
//
// Each function with a cumulative share of 1% or more on a side
// (MinShare) is tested twice: its cumulative cost, and its own code's
// when that is 1% or more too and it calls anything (for a leaf the two
// are one). A slowdown in a function's own code is a small part of a big
// function's cumulative cost but a large part of its own: a 50% slower
// handler body of 3% under an 80% subtree moves the subtree 2% and the
// body 50%.
//
// A cost is not compared with its base value but with c times it. When
// one function gets slower, every other function's share falls a little
// (dilution); when the load's mix moves, the shares of the work that
// follows the load move together. c is what the rest of the service did:
// the weighted median, over the functions whose own code holds 0.5% or
// more of the base's samples, of their head self share over their base
// self share, weighted by the base share, leaving out the tested function
// and, for its cumulative cost, everything it calls (a subtree is
// measured against the rest of the service). The median is interpolated
// between the two functions straddling half the weight. A cumulative cost
// is not tested when less than 5% of the base's CPU lies outside its
// subtree: there is nothing left to measure it against.
//
// When the service's CPU per second (cores, or samples per second) fell
// beyond its noise (the log of the ratio more than 2 standard errors
// below 0), a cost must also have risen in CPU per second: c is raised to
// the ratio's inverse if that is more. A background loop whose cost does
// not depend on the load doubles its share when the load halves, and is
// no regression; it is not, because its CPU per second did not rise.
// Conversely, when the load rose, a fall counts (below) only if it is a
// fall in CPU per second too.
//
// Per request, c is raised to 1 when it is less: a cost per request is
// not diluted by a slowdown elsewhere, and when the load rises the fixed
// costs spread over more requests, so the others' cost per request falls
// (by a third at 1.5× the load, for a service's work outside its server's
// subtree) while a function doing the same work per request holds. Only
// a rise of the function's own cost per request is a regression.
//
// # The test
//
// For a cost going from p_b (over N_b samples) to p_h (over N_h):
//
//	z = (p_h − c·p_b) / √( φ_h·V(p_h)/N_h + φ_b·c²·V(p_b)/N_b + p_b²·Var(c) )
//
// with V(p) = p(1−p) for a share (binomial) and p per request (Poisson),
// and the one-sided p-value P(Z ≥ z) (through erfc, exact far in the
// tail). φ is the function's overdispersion, one per side: per-window
// shares vary more than sampling alone makes them (the request mix moves
// from window to window), by a variance τ² of the share that does not
// depend on the window's size. A window of N_w samples then counts the
// function with variance N_w·V + N_w²·τ², and a side's pooled cost has
// φ = 1 + κ·ΣN_w²/N, with κ = τ²/V estimated from both sides' Pearson χ²
// of the per-window counts about each side's rate (its mean is
// df + κ·(N − ΣN_w²/N)); the head's κ is its own, shrunk toward the
// pooled one. With windows of one size φ is the usual χ²/df, at least 1;
// a deploy sampled five times faster than its base (the boost) has
// windows five times larger, whose φ is that much further above 1: the
// same jitter of the share is five times the sampling's variance. The
// windows keep only Σx²/N per function and ΣN_w² per side for it, not the
// windows themselves. Var(c) is π/2
// (a median's efficiency) times the variance of the weighted mean of the
// ratios, from their counts' sampling noise or from their scatter about
// c, whichever is larger: for a large function, the uncertainty of c is
// most of the test's. On simulated null deploys (the same code deployed
// again) the z of every test is distributed as a standard normal: mean 0,
// standard deviation 0.97 to 1.06, and p < 0.001 in 0.03% to 0.2% of
// tests.
//
// Thousands of functions are tested at once: at each look, the
// Benjamini–Hochberg procedure runs over all its tests at false discovery
// rate FDR divided by the number of looks (0.01/7). Under the null, a look
// raises anything with probability at most its share, so that a deploy
// with no regression raises a finding with probability at most FDR (1%)
// over its looks; in 100 simulated null deploys at 0.25 to 2 cores it
// raised none, nor in 5 null deploys of a 2,000-function service.
//
// A significant rise is a regression only if it is at least 5% of the
// expected cost (MinRelChange) and 0.1% of the service's CPU
// (MinAbsChange): with enough samples a 1% change is significant, and not
// worth an alert.
//
// # What is not a regression
//
// A cost shift (a rename, an extracted helper, work moved from one
// function to another) raises one function's cost as another's falls,
// with the service's total unchanged. For a significant rise, the falls
// that could have fed it are summed, each against its own c: the own code
// of the function's ancestors (a helper extracted from a caller), the
// cumulative cost of its kin (what its callers call, and their subtrees:
// a rename, work moved between callees), and for a rise of its own code,
// of its direct callees (a callee inlined or folded into it); a neighbour
// counts from z ≤ −2, or its Bonferroni bound at 5% over the neighbours
// when there are many (a handler with 40 callees: about −3), so that
// noise among many neighbours explains nothing away. Any other function
// whose fall is as strong as the look's Bonferroni bound counts too. A
// function and its callers falling together count once. When the falls
// explain half the rise, it is a cost shift. When they do not, but one
// neighbour's fall, from z ≤ −1, is more likely (by a likelihood ratio of
// e or more) the source of the rise than noise, the rise is held: a
// small function that took work from a big one rises significantly
// minutes before the big one's fall does, and a later look decides.
//
// A rise of a cumulative share must sit somewhere, as compare's blame
// walk asks: in the function's own code (a leaf's cumulative cost is its
// own), or in one callee, and there again. A part of the function's
// samples (its own code, or its calls to one callee) holds the rise when
// the proportion of its samples in that part grew (z ≥ 2, or the parts'
// Bonferroni bound at 5%) by half the rise or more. A subtree that grew
// uniformly, every part alike, does more of its work: its loop runs more
// times (fixtures/deployapp's slower render), or it serves more requests
// against the service's fixed costs. Shares tell the two apart by the
// rest of the service, outside the subtree: after a code change the rest
// moves alike (dilution), and the rise is a regression; at a load change
// it moves apart, the fixed costs' shares falling while the per-request
// work outside rises too (its ratios scatter about c beyond their
// sampling noise: a χ² test at 1%), and the rise is no finding ("grew
// uniformly"). So is a rise while the rest did more work itself: the
// samples outside the subtree rose in CPU per second (z ≥ 2 over the
// noise of the service's CPU rate and of the split, and by a quarter of
// the subtree's own rise or more), which more requests do and a
// regression inside the subtree does not; a host that got busier raises
// everything's CPU per unit of work by a few percent, far less than a
// regressed subtree's. In the evaluation
// harness at ×1.5 load, net/http.(*conn).serve and readRequest, measured
// against a rest whose fixed costs fell, rose by 10 to 33%; the scatter
// alone missed it in 5 of 100 runs, the rest's CPU per second (+32%)
// missed none. Per request the question does not arise. A rise that sits in callees tested on their own is theirs: it
// is held until their tests find it.
//
// One slowdown raises the cumulative cost of every function above it by
// as much: the deepest is blamed. Callees go before their callers by
// their number of descendants, not their cost: a caller whose samples
// are all in one callee costs as much as it, and one calling a callee
// that others share costs less. A function regressed only in its
// cumulative cost is dropped when the regressed functions below it
// explain 80% of its rise, or when what they leave is not a rise (z < 2);
// one whose own code rose is kept. The functions raised at the deploy's
// earlier looks count among those below, with their rise at this look: a
// caller crossing its threshold a look after its callee did is the same
// rise found again. A function the base never ran has no
// cost to have grown: its rise is blamed on the first caller up its
// heaviest path that the base ran, as compare blames new call sites. The
// path of a finding is the heaviest chain of callers from a root down to
// the function, by the head's samples on each call.
//
// # Findings
//
// A finding gives the function, its path, its own and cumulative costs
// on both sides, the change of the blamed cost (the test with the smaller
// p-value) against c times its base with a 95% normal confidence
// interval, the p-value, both sides' verdicts combined over their windows
// (verdict.Combine), the ranges of windows compared, and why in
// sentences. Compare of the two ranges' windows gives the same finding,
// to the bit. Its ID is a hash of the kind, service, function and both
// versions: found again from the same windows, it is the same finding.
// Findings of one look are ordered by p-value; a function found at one
// look is not raised again at the next.
//
// A finding is resolved when a version deployed after its head tests, at
// one of its looks, significantly below half-way between the finding's
// base and regressed cost (one-sided, at 95%): a fix, or a rollback. Noise
// at an early look cannot resolve a regression that is still there, and
// a regression half fixed stays.
//
// # Memory and restarts
//
// A service's functions and calls are numbered in a table, and its
// counts are slices by number, 32 bytes a function and 8 a call edge: 7
// blocks for each version running or stopped less than MaxBaseAge ago
// (one, most of the time), and the base and head of a deployment in its
// first 30 minutes. A 2,000-function service with 3,000 edges holds
// about 0.8 MB. A service's table holds at most MaxFunctions (4,000)
// functions: past it, the least costly are forgotten (their samples stay
// in the totals). At most MaxVersions (4) versions of a service,
// MaxActive (64) of its unresolved findings, and MaxServices (500)
// services are kept, the least recently seen forgotten first. Reading a window costs a map lookup per
// function and call (BenchmarkObserve: about half a millisecond for a
// window of 1,800 functions), a look a few milliseconds.
//
// The detector depends on the windows only: a new detector fed every
// service's windows of the last Lookback (the last look, the warm-up, the
// base's age and its blocks: 1 h 40 min at the defaults) raises the same
// findings, with the same IDs and numbers, as one that never stopped.
// Restore gives it the unresolved findings raised before, so that it
// resolves them and does not raise them again.
//
// # How soon
//
// The samples decide. At 19 Hz, a service using one core gives 1,140
// samples a minute; a 10% slowdown of a function holding 10% of its CPU
// moves its share from 10% to 10.9%, and telling that from noise takes
// tens of thousands of samples. On simulated deploys (a 10% leaf of a
// web service's call tree, 30 deploys each, a 5% lognormal jitter of
// every function's weight from window to window):
//
//	rate    cores  slowdown  found in 3 min  in 10 min  in 30 min  median
//	19 Hz   0.5    10%        0/30             0/30        4/30
//	19 Hz   0.5    20%        1/30            15/30       27/30      20 min
//	19 Hz   1      10%        1/30             4/30       12/30
//	19 Hz   1      20%        5/30            26/30       30/30      10 min
//	19 Hz   2      10%        2/30            11/30       27/30      20 min
//	19 Hz   2      20%       17/30            30/30       30/30       3 min
//	19 Hz   4      10%        8/30            21/30       30/30      10 min
//	19 Hz   8      10%        9/30            29/30       30/30       5 min
//	99 Hz   0.5    10%        3/30            19/30       29/30      10 min
//	99 Hz   1      10%        6/30            27/30       30/30       5 min
//	99 Hz   2      10%       16/30            30/30       30/30       3 min
//
// The right function was blamed first in every one found. The time to
// detect falls with the samples, cores times the rate: 5 times the rate
// is about 5 times the cores. Beyond a few cores it falls more slowly:
// the windows' own variability (φ), not sampling, limits it.
//
// # Limits
//
// When the load falls at the same time as a function gets slower, the
// slowdown is found only once its CPU per second exceeds the old. When
// most of a service's CPU is fixed-cost work, a load change moves c with
// the fixed work, and the per-request work may look slower. A load change
// at a deploy is told from a slower request path by the rest ("grew
// uniformly" above); a slower request path at a deploy that also brings
// more requests is taken for the load. In the evaluation's full grid,
// load ×1.5 at a deploy raises no finding on the server's subtree; the 2
// of 20 runs with a finding at 19 Hz (1 boosted) are one function's
// fluctuation, as in null deploys. A cost shift
// between functions that are not kin (work moved across subtrees) is
// told only once the source's fall is strong. A rename of a function
// resolves its findings, as if fixed.
package regress
