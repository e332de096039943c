#!/usr/bin/env bash
# The live tests on a busy machine: runs the tests of the packages that
# watch real processes (eBPF, /proc, live diagnoses) beside stress-ng
# hogging every CPU, once at the same priority as the hog and once niced
# below it (CI's other job may have priority), and fails if any test fails.
#
# Installs nothing: needs stress-ng (Debian: apt-get install stress-ng) and,
# for the eBPF tests to run rather than skip, root.
#
#	scripts/test-busy.sh                 both variants, once each
#	RUNS=3 scripts/test-busy.sh          each variant three times
#	NICES=19 PKGS=./bpf scripts/test-busy.sh
#
# Environment: PKGS (default ./bpf ./cmd/perfhound ./agent/...), CPUS
# (stress-ng workers, default every CPU), NICES (the tests' nice levels,
# default "0 19"; the hog runs at 0), RUNS (default 1), TIMEOUT (seconds
# per package and run, default 1500), VERBOSE=1 for -test.v, LOGDIR (keep
# every package's output there), GO (default go).
#
# The test binaries and the subjects the tests would build (the workloads,
# the command) are compiled first, unloaded and at normal priority, and
# handed to the tests in PERFHOUND_TEST_SUBJECTS: what is under test is the
# tests, not the linker at nice 19. Packages run one at a time, as make test
# runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PKGS=${PKGS:-./bpf ./cmd/perfhound ./agent/...}
CPUS=${CPUS:-$(nproc)}
NICES=${NICES:-0 19}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-1500}

[ -z "${LOGDIR:-}" ] || mkdir -p "$LOGDIR"

if ! command -v stress-ng >/dev/null; then
	echo "test-busy: stress-ng not found (Debian: apt-get install stress-ng)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/perfhound-test-busy.XXXXXX)
hog= child=
cleanup() {
	for p in $child $hog; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build every test binary, and the subjects the tests would build (as the
# tests of bpf, cmd/perfhound, agent/goscrape and agent/ingest build them).
pkgs=$($GO list $PKGS)
npkgs=$(echo "$pkgs" | wc -w)
for pkg in $pkgs; do
	name=$(echo "$pkg" | tr / _)
	$GO test -c -o "$work/$name.test" "$pkg"
done
subjects=$work/subjects
mkdir "$subjects"
$GO build -buildvcs=false -o "$subjects/workload" ./fixtures/workloads
cp "$subjects/workload" "$subjects/workloads"
$GO build -buildvcs=false -ldflags='-s -w' -o "$subjects/workload-stripped" ./fixtures/workloads
$GO build -buildvcs=false -o "$subjects/perfhound" ./cmd/perfhound
$GO build -buildvcs=false -o "$subjects/goservice" ./fixtures/goservice
$GO build -buildvcs=false -o "$subjects/pyroapp" ./fixtures/pyroapp
if command -v gcc >/dev/null; then
	gcc -O1 -g -fno-omit-frame-pointer -pthread -Wall -o "$subjects/cwork" fixtures/workloads/c/cwork.c
fi
export PERFHOUND_TEST_SUBJECTS=$subjects

failed=0
for run in $(seq "$RUNS"); do
	for nice in $NICES; do
		# One hog for the whole variant, bounded even if this script dies.
		stress-ng --cpu "$CPUS" --timeout "$((TIMEOUT * npkgs + 60))s" --quiet &
		hog=$!
		for pkg in $pkgs; do
			name=$(echo "$pkg" | tr / _)
			[ -x "$work/$name.test" ] || continue # no test files
			dir=$($GO list -f '{{.Dir}}' "$pkg")
			start=$(date +%s)
			status=0
			# In the background, so that a signal to this script ends it.
			(cd "$dir" && exec timeout --kill-after=30 "$TIMEOUT" nice -n "$nice" \
				"$work/$name.test" -test.count=1 -test.timeout="$((TIMEOUT - 30))s" ${VERBOSE:+-test.v}) \
				>"$work/out" 2>&1 &
			child=$!
			wait "$child" || status=$?
			child=
			secs=$(($(date +%s) - start))
			if [ "$status" = 0 ]; then
				echo "ok   run $run nice $nice $pkg ${secs}s"
			else
				echo "FAIL run $run nice $nice $pkg ${secs}s (status $status)"
				grep -v '^=== ' "$work/out" | tail -n 200
				failed=1
			fi
			[ -z "${VERBOSE:-}" ] || cat "$work/out"
			[ -z "${LOGDIR:-}" ] || cp "$work/out" "$LOGDIR/run$run-nice$nice-$name.log"
		done
		kill "$hog"
		wait "$hog" 2>/dev/null || true
		hog=
	done
done
exit $failed
