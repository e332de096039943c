#!/usr/bin/env bash
# Overhead of the eBPF collectors, as docs/benchmarks.md reports it.
#
# A CPU-bound workload (one worker per CPU, SECS seconds) runs alone,
# then beside bpfwatch with every collector on for the whole host, in
# each of MODES, in ROUNDS interleaved rounds:
#   19   the agent's settings (19 Hz, off-CPU switches followed 1 in 4)
#   19n  the same, walking code without frame pointers by its .eh_frame
#        tables (-native, the agent's default)
#   99   diagnose's (99 Hz, every switch)
#   99n  diagnose's with tables (what diagnose runs)
# WORKLOAD is hash (default: Go SHA-256 hashers, frame pointers: the
# tables are never walked) or xz (Debian's stripped xz compressing
# base64 text, native code without frame pointers: every stack is
# walked by tables in the n modes); its throughput is blocks hashed or
# bytes written. It prints each run and then the medians: throughput
# loss against the alone runs, the collector's own CPU time once loaded
# (share of one core), the CPU time loading took, its peak RSS, and the
# time the kernel spent in its BPF programs (share of all CPUs), which
# the workload pays; and perfhound compare's test of each collector run
# against the alone runs, with the 95% interval of the difference. Needs
# root. Kernel BPF statistics stay on during the collector runs, which
# makes the loss slightly pessimistic.
#
# WARMUP (seconds, default 0) lets each collector run that long and read
# once before the workload starts, and leaves that out of its cost: the
# host's running processes are met, their objects parsed and their tables
# built, and a one-second run of the workload during it has the
# collector meet its program too, as in an agent that has been running a
# while (new processes of programs it has seen). At 0 every run starts
# cold and pays all of that within the workload's SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
MODES=${MODES:-19 99}
WORKLOAD=${WORKLOAD:-hash}
WARMUP=${WARMUP:-0}
case $WARMUP in
*[!0-9]* | '' | 1) echo "WARMUP=$WARMUP: want 0 or whole seconds, at least 2 (a 1-s run of the workload happens in it)" >&2; exit 1 ;;
esac
ncpu=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/bpfwatch" ./bpf/cmd/bpfwatch
case $WORKLOAD in
hash)
	go build -o "$tmp/workload" ./fixtures/workloads
	name=HashThroughput
	;;
xz)
	command -v xz >/dev/null || { echo "WORKLOAD=xz needs xz (apt-get install xz-utils)" >&2; exit 1; }
	# More text than a worker compresses in SECS: about 3 MB/s at -3.
	head -c "$((SECS * 8))M" /dev/urandom | base64 >"$tmp/text"
	name=XzThroughput
	;;
*)
	echo "WORKLOAD=$WORKLOAD: want hash or xz" >&2
	exit 1
	;;
esac

# workload prints what all workers did together: blocks hashed, or bytes
# of compressed output.
workload() {
	local pids=() i
	for i in $(seq "$ncpu"); do
		if [ "$WORKLOAD" = hash ]; then
			"$tmp/workload" -mode hash -duration "${SECS}s" >"$tmp/ops.$i" &
		else
			(timeout -s INT "${SECS}s" xz -T1 -3 -c "$tmp/text" | wc -c >"$tmp/ops.$i") &
		fi
		pids+=($!)
	done
	wait "${pids[@]}"
	cat "$tmp"/ops.* | awk '{ s += $1 } END { print s }'
}

# Each run is also written as a benchmark result (ns per unit of work),
# so that perfhound compare can test the difference against the noise.
bench_line() { awk -v ops="$1" -v secs="$SECS" -v name="$name" 'BEGIN { printf "Benchmark%s 1 %.3f ns/op\n", name, secs * 1e9 / ops }'; }

echo "# $ROUNDS rounds of ${SECS}s, $ncpu workers ($WORKLOAD), collectors warmed up ${WARMUP}s; $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for round in $(seq "$ROUNDS"); do
	for mode in off $MODES; do
		if [ "$mode" = off ]; then
			ops=$(workload)
			bench_line "$ops" >>"$tmp/bench-off.txt"
			echo "round=$round hz=off ops=$ops"
			continue
		fi
		case $mode in
		19) settings=(-agent) ;;
		19n) settings=(-agent -native) ;;
		99) settings=(-freq 99) ;;
		99n) settings=(-freq 99 -native) ;;
		*) echo "unknown mode $mode: want 19, 19n, 99 or 99n" >&2; exit 1 ;;
		esac
		"$tmp/bpfwatch" "${settings[@]}" -warmup "${WARMUP}s" -duration "$((SECS + 2))s" -bpf-stats 2>"$tmp/watch.log" &
		watcher=$!
		if [ "$WARMUP" -gt 0 ]; then
			# The workload's program, met during the warm-up.
			for _ in $(seq 300); do
				grep -q '^bpfwatch: warming up' "$tmp/watch.log" && break
				sleep 0.1
			done
			(SECS=1 ncpu=1 workload >/dev/null)
		fi
		for _ in $(seq $((300 + WARMUP * 10))); do # loaded, attached and warm
			grep -q '^bpfwatch: collecting' "$tmp/watch.log" && break
			sleep 0.1
		done
		ops=$(workload)
		wait "$watcher" || { cat "$tmp/watch.log" >&2; exit 1; }
		bench_line "$ops" >>"$tmp/bench-$mode.txt"
		echo "round=$round hz=$mode ops=$ops $(grep '^cost:' "$tmp/watch.log" | cut -d' ' -f2-)"
	done
done | tee "$tmp/runs"

awk -v ncpu="$ncpu" -v secs="$SECS" -v modes="$MODES" '
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
	printf "\nalone: median %d\n", base
	n = split(modes, hzs, " ")
	for (i = 1; i <= n; i++) {
		hz = hzs[i]
		printf "%3s: throughput loss %.2f%% (median %d); collector CPU %.2f%% of one core after %.2f s to load, peak RSS %.1f MiB; in-kernel BPF %.3f%% of all CPUs\n",
			hz, 100 * (1 - median(ops[hz]) / base), median(ops[hz]), 100 * median(cpu[hz]), median(startcpu[hz]), median(rss[hz]), 100 * median(bpf[hz])
	}
}' "$tmp/runs"

for hz in $MODES; do
	echo
	echo "perfhound compare: alone against $hz (ns per unit of work; a regression is the collector's cost)"
	go run ./cmd/perfhound compare --threshold 0.3 --fail-on never "$tmp/bench-off.txt" "$tmp/bench-$hz.txt" | sed -n "1,/^\$/p;/$name/p"
done
