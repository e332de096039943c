#!/bin/sh
# perfhound-ci.sh: benchmark two git revisions of one Go package, interleaved,
# and compare them with `perfhound compare`. For any CI system (see perfhound's
# docs/ci.md).
#
# Usage: perfhound-ci.sh BASE_REF HEAD_REF PKG [RUNS]
#   BASE_REF, HEAD_REF  git revisions (branch, tag, SHA, origin/main, HEAD, ...);
#                       both must be present in the clone (no shallow clone)
#   PKG                 one package, as seen from the repository root
#                       (./internal/codec); run the script once per package
#   RUNS                runs per side, default 10 (at least 6 for a 95% interval)
#
# Run it from anywhere inside the repository. Each side is checked out into a
# temporary git worktree and its test binary built once (go test -c); then the
# binaries run alternately, base 1, head 1, base 2, head 2, ..., so that drift
# of the machine's speed lands on both sides alike. Every run is one
# `-test.count 1` pass over the selected benchmarks with a CPU profile.
#
# Environment (all optional):
#   PERFHOUND        perfhound command            (default: perfhound)
#   OUT              output directory             (default: ./perfhound-out)
#                    gets base/ and head/ (emptied first; bench-NN.txt and
#                    cpu-NN.pprof per run) and report.md (or .txt, .json)
#   BENCH            -test.bench regexp           (default: .)
#   BENCHTIME        -test.benchtime per run      (default: 1s)
#   FORMAT           text, markdown or json       (default: markdown)
#   MEMPROFILE       1: also write mem-NN.pprof, so B/op regressions are
#                    attributed to functions too  (default: 0)
#   PERFHOUND_FLAGS  extra compare flags, word-split, e.g. "--threshold 10"
#   GOMAXPROCS (test binaries) and GOFLAGS (-tags=..., the build) work as usual.
#
# Exit status: perfhound compare's: 0 nothing fails the policy, 1 regression
# (or change, with --fail-on change), 2 bad input or usage; 3 when the script
# itself fails (a ref that does not resolve, a build or a benchmark failing).
set -eu

die() { # CODE MESSAGE
	code=$1
	shift
	echo "perfhound-ci: $*" >&2
	exit "$code"
}

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	die 2 "usage: $0 BASE_REF HEAD_REF PKG [RUNS]"
fi
base_ref=$1
head_ref=$2
pkg=$3
runs=${4:-10}
case $runs in
'' | *[!0-9]*) die 2 "RUNS must be a number, got '$runs'" ;;
esac
if [ "$runs" -lt 1 ] || [ "$runs" -gt 99 ]; then
	die 2 "RUNS must be 1..99, got $runs"
fi
[ "$runs" -ge 6 ] || echo "perfhound-ci: warning: $runs runs a side is too few for a 95% interval; use 6 or more (10 recommended)" >&2

PERFHOUND=${PERFHOUND:-perfhound}
OUT=${OUT:-perfhound-out}
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-1s}
FORMAT=${FORMAT:-markdown}
MEMPROFILE=${MEMPROFILE:-0}
PERFHOUND_FLAGS=${PERFHOUND_FLAGS:-}
case $FORMAT in
text) ext=txt ;;
markdown) ext=md ;;
json) ext=json ;;
*) die 2 "FORMAT must be text, markdown or json, got '$FORMAT'" ;;
esac

command -v "$PERFHOUND" >/dev/null 2>&1 || die 3 "perfhound not found (set PERFHOUND=/path/to/perfhound)"
repo=$(git rev-parse --show-toplevel 2>/dev/null) || die 3 "not inside a git repository"
base_sha=$(git rev-parse --verify --quiet "$base_ref^{commit}") || die 3 "base ref '$base_ref' does not resolve (shallow clone? fetch it first)"
head_sha=$(git rev-parse --verify --quiet "$head_ref^{commit}") || die 3 "head ref '$head_ref' does not resolve (shallow clone? fetch it first)"

mkdir -p "$OUT"
out=$(cd "$OUT" && pwd)
rm -rf "$out/base" "$out/head"
mkdir "$out/base" "$out/head"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/perfhound-ci.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	for side in base head; do
		if [ -d "$tmp/$side" ]; then
			git -C "$repo" worktree remove --force "$tmp/$side" >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$tmp"
	git -C "$repo" worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Check out and build each side once; binaries stay out of the output dirs.
for side in base head; do
	if [ "$side" = base ]; then sha=$base_sha; else sha=$head_sha; fi
	echo "perfhound-ci: $side = $sha: building $pkg" >&2
	git -C "$repo" worktree add --quiet --detach "$tmp/$side" "$sha" ||
		die 3 "git worktree add for $side ($sha) failed"
	(cd "$tmp/$side" && go test -c -o "$tmp/$side.test" "$pkg") ||
		die 3 "building the $side test binary of $pkg failed"
	[ -x "$tmp/$side.test" ] || die 3 "$pkg has no test files on $side"
	# Run in the package directory, as go test does, so testdata/ is found.
	dir=$(cd "$tmp/$side" && go list -f '{{.Dir}}' "$pkg") ||
		die 3 "go list $pkg failed on $side"
	printf '%s\n' "$dir" >"$tmp/$side.dir"
done

# run SIDE NN: one pass over the benchmarks into $out/SIDE/{bench,cpu,mem}-NN.*
run() {
	mem=
	if [ "$MEMPROFILE" = 1 ]; then mem=-test.memprofile=$out/$1/mem-$2.pprof; fi
	(cd "$(cat "$tmp/$1.dir")" && "$tmp/$1.test" -test.run '^$' -test.bench "$BENCH" \
		-test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" \
		-test.cpuprofile "$out/$1/cpu-$2.pprof" ${mem:+"$mem"}) >"$out/$1/bench-$2.txt" ||
		die 3 "$1 run $2 failed: see $out/$1/bench-$2.txt"
	grep -q '^Benchmark' "$out/$1/bench-$2.txt" ||
		die 3 "$1 run $2: no benchmark matched -test.bench '$BENCH'"
}

i=1
while [ "$i" -le "$runs" ]; do
	n=$(printf '%02d' "$i")
	echo "perfhound-ci: run $n/$runs" >&2
	run base "$n"
	run head "$n"
	i=$((i + 1))
done

report=$out/report.$ext
rm -f "$report"
rc=0
# shellcheck disable=SC2086 # PERFHOUND_FLAGS is a list of flags on purpose
"$PERFHOUND" compare --format "$FORMAT" $PERFHOUND_FLAGS --output "$report" \
	"$out/base" "$out/head" || rc=$?
case $rc in
0) ;;
1) echo "perfhound-ci: perfhound found what --fail-on fails on (exit 1); report: $report" >&2 ;;
2) echo "perfhound-ci: perfhound could not use its input or flags (exit 2, see above); no report" >&2 ;;
*) echo "perfhound-ci: perfhound exited $rc" >&2 ;;
esac
[ ! -s "$report" ] || cat "$report"
exit "$rc"
