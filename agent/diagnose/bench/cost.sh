#!/usr/bin/env bash
# diagnose's own cost while it watches: CPU time (user + system) and peak
# RSS of the perfhound process, from GNU time, for
#   pid       --pid of a hashing workload (eBPF on; then --no-ebpf)
#   host      the whole host, with HOSTPROCS processes that wake every
#             200 ms (cwork naps) and the hashing workload (eBPF on)
# each ROUNDS times over a SECS-second window, and how long `perfhound
# analyze` takes to load and report (text and HTML) the host observation.
# Run as root for eBPF; needs /usr/bin/time and gcc (apt-get install time
# gcc).
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
HOSTPROCS=${HOSTPROCS:-500}
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
tmp=$(mktemp -d)
sleepers=()
cleanup() {
	[ ${#sleepers[@]} -eq 0 ] || kill "${sleepers[@]}" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/perfhound" ./cmd/perfhound
go build -o "$tmp/workloads" ./fixtures/workloads
gcc -O1 -fno-omit-frame-pointer -pthread -o "$tmp/cwork" fixtures/workloads/c/cwork.c

# measure NAME ARGS...: one diagnose of a fresh hashing workload; prints
# "NAME cpu_seconds peak_kib wall_seconds".
measure() {
	local name=$1
	shift
	"$tmp/workloads" -mode hash -duration "$((SECS + 3))s" >/dev/null &
	local w=$!
	sleep 0.3
	local args=("$@")
	args=("${args[@]//@PID@/$w}")
	/usr/bin/time -o "$tmp/time" -f "%U %S %M %e" "$tmp/perfhound" diagnose -q -d "${SECS}s" "${args[@]}" >/dev/null
	wait "$w" || true
	read -r u s m e <"$tmp/time"
	echo "$name $(echo "$u + $s" | bc -l) $m $e"
}

summarize() { # NAME: min/median/max of CPU and RSS over the rounds
	local cpu rss
	cpu=$(awk -v name="$1" '$1 == name { print $2 }' "$tmp/results" | sort -g | tr '\n' ' ')
	rss=$(awk -v name="$1" '$1 == name { print $3 }' "$tmp/results" | sort -g | tr '\n' ' ')
	awk -v name="$1" -v secs="$SECS" -v cpu="$cpu" -v rss="$rss" 'BEGIN {
		n = split(cpu, c, " "); split(rss, m, " "); mid = int((n + 1) / 2)
		printf "| %s | %.2f / %.2f / %.2f s | %.2f%% | %.1f / %.1f MiB |\n", name, c[1], c[mid], c[n],
			100 * c[mid] / secs, m[mid] / 1024, m[n] / 1024
	}'
}

: >"$tmp/results"
for _ in $(seq "$ROUNDS"); do
	measure pid --pid @PID@ >>"$tmp/results"
	measure pid-no-ebpf --no-ebpf --pid @PID@ >>"$tmp/results"
done
for _ in $(seq "$HOSTPROCS"); do
	"$tmp/cwork" naps 3000 200000 &
	sleepers+=($!)
done
sleep 0.5
for _ in $(seq "$ROUNDS"); do
	measure host >>"$tmp/results"
done
"$tmp/workloads" -mode hash -duration "$((SECS + 3))s" >/dev/null &
sleep 0.3
"$tmp/perfhound" diagnose -q -d "${SECS}s" --save "$tmp/host-obs" >/dev/null 2>&1
procs=$(grep -o '"pid"' "$tmp/host-obs/observation.json" | wc -l)
analyze_ms() {
	local best=
	for _ in 1 2 3; do
		local t0 t1
		t0=$(date +%s%N)
		"$tmp/perfhound" analyze "$@" "$tmp/host-obs" >/dev/null
		t1=$(date +%s%N)
		local ms=$(((t1 - t0) / 1000000))
		if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
	done
	echo "$best"
}
text_ms=$(analyze_ms -f text)
html_ms=$(analyze_ms -f html)

echo "diagnose's own cost: $SECS s window, $ROUNDS rounds, $(nproc) CPUs, kernel $(uname -r)"
echo
echo "| target | CPU time min / median / max | of one core (median) | peak RSS median / max |"
echo "|---|---|---|---|"
summarize pid
summarize pid-no-ebpf
summarize host
echo
echo "Host observation with $HOSTPROCS napping processes ($procs pid labels in its index): perfhound analyze, best of 3: text ${text_ms} ms, HTML ${html_ms} ms (load, judge the host and its busiest processes, render)."
