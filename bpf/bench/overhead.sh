#!/usr/bin/env bash
# Overhead of the eBPF collectors, as docs/benchmarks.md reports it.
#
# A CPU-bound workload (one SHA-256 hasher per CPU, SECS seconds) runs
# alone, then beside bpfwatch with every collector on for the whole host,
# with the agent's settings (19 Hz, off-CPU switches followed 1 in 4) and
# with diagnose's (99 Hz, every switch), in ROUNDS interleaved rounds. It
# prints each run and then the medians: throughput loss against the alone
# runs, the collector's own CPU time once loaded (share of one core), the
# CPU time loading took, its peak RSS, and the time the kernel spent in
# its BPF programs (share of all CPUs), which the workload pays; and perfhound compare's test of each collector run
# against the alone runs, with the 95% interval of the difference. Needs
# root. Kernel BPF statistics stay on during the collector runs, which
# makes the loss slightly pessimistic.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
ncpu=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/bpfwatch" ./bpf/cmd/bpfwatch
go build -o "$tmp/workload" ./fixtures/workloads

# workload prints the blocks hashed by all hashers together.
workload() {
	local pids=() i
	for i in $(seq "$ncpu"); do
		"$tmp/workload" -mode hash -duration "${SECS}s" >"$tmp/ops.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	cat "$tmp"/ops.* | awk '{ s += $1 } END { print s }'
}

# Each run is also written as a benchmark result (ns per block hashed),
# so that perfhound compare can test the difference against the noise.
bench_line() { awk -v ops="$1" -v secs="$SECS" 'BEGIN { printf "BenchmarkHashThroughput 1 %.1f ns/op\n", secs * 1e9 / ops }'; }

echo "# $ROUNDS rounds of ${SECS}s, $ncpu hashers; $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for round in $(seq "$ROUNDS"); do
	for mode in off 19 99; do
		if [ "$mode" = off ]; then
			ops=$(workload)
			bench_line "$ops" >>"$tmp/bench-off.txt"
			echo "round=$round hz=off ops=$ops"
			continue
		fi
		settings=(-freq 99)
		[ "$mode" = 19 ] && settings=(-agent)
		"$tmp/bpfwatch" "${settings[@]}" -duration "$((SECS + 2))s" -bpf-stats 2>"$tmp/watch.log" &
		watcher=$!
		for _ in $(seq 300); do # loaded and attached
			grep -q '^bpfwatch: collecting' "$tmp/watch.log" && break
			sleep 0.1
		done
		ops=$(workload)
		wait "$watcher" || { cat "$tmp/watch.log" >&2; exit 1; }
		bench_line "$ops" >>"$tmp/bench-$mode.txt"
		echo "round=$round hz=$mode ops=$ops $(grep '^cost:' "$tmp/watch.log" | cut -d' ' -f2-)"
	done
done | tee "$tmp/runs"

awk -v ncpu="$ncpu" -v secs="$SECS" '
function kv(s,   a) { split(s, a, "="); return a[2] }
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{
	hz = kv($2); ops[hz] = ops[hz] " " kv($3)
	if (hz != "off") {
		# Charged to the workload SECS, though the collector ran a little
		# longer: a slight overstatement, on the safe side.
		cpu[hz] = cpu[hz] " " (kv($5) - kv($6)) / secs; startcpu[hz] = startcpu[hz] " " kv($6)
		rss[hz] = rss[hz] " " kv($7) / 1024; bpf[hz] = bpf[hz] " " kv($9) / secs / ncpu
	}
}
END {
	base = median(ops["off"])
	printf "\nalone: median %d blocks\n", base
	split("19 99", hzs, " ")
	for (i = 1; i <= 2; i++) {
		hz = hzs[i]
		printf "%2d Hz: throughput loss %.2f%% (median %d blocks); collector CPU %.2f%% of one core after %.2f s to load, peak RSS %.1f MiB; in-kernel BPF %.3f%% of all CPUs\n",
			hz, 100 * (1 - median(ops[hz]) / base), median(ops[hz]), 100 * median(cpu[hz]), median(startcpu[hz]), median(rss[hz]), 100 * median(bpf[hz])
	}
}' "$tmp/runs"

for hz in 19 99; do
	echo
	echo "perfhound compare: alone against $hz Hz (ns per block; a regression is the collector's cost)"
	go run ./cmd/perfhound compare --threshold 0.3 --fail-on never "$tmp/bench-off.txt" "$tmp/bench-$hz.txt" | sed -n '1,/^$/p;/HashThroughput/p'
done
