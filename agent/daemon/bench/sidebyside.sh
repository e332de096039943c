#!/usr/bin/env bash
# Two perfhound agents at once on this host over the same span, so that
# whatever else the host does, both see it: the fairest comparison of
# two builds or two settings on a machine that is not quiet (cost.sh's
# rounds follow one another, and a build beside one round and not the
# other swamps the difference). A and B are the agents' commands without
# --data-dir and --listen, e.g.
#
#	A="/tmp/perfhound-old agent" B="/tmp/perfhound agent --frequency 99" agent/daemon/bench/sidebyside.sh
#
# Prints each agent's CPU (utime + stime from /proc/PID/stat) over SECS
# after WARMUP seconds, in % of one core, and B's over A's, and each one's
# RSS at the end and peak RSS (VmHWM, loading included). Both agents
# profile the host, each other included. Run as root (eBPF).
set -euo pipefail
: "${A:?A is the first agent's command}" "${B:?B is the second agent's command}"
WARMUP=${WARMUP:-40}
SECS=${SECS:-180}
tmp=$(mktemp -d)
pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck disable=SC2086 # A and B are commands with arguments
$A --data-dir "$tmp/a" --listen 127.0.0.1:0 2>"$tmp/a.log" &
pids+=($!)
# shellcheck disable=SC2086
$B --data-dir "$tmp/b" --listen 127.0.0.1:0 2>"$tmp/b.log" &
pids+=($!)
sleep "$WARMUP"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for p in "${pids[@]}"; do kill -0 "$p" || { cat "$tmp"/*.log >&2; exit 1; }; done
a0=$(ticks "${pids[0]}") b0=$(ticks "${pids[1]}") t0=$(date +%s%N)
sleep "$SECS"
a1=$(ticks "${pids[0]}") b1=$(ticks "${pids[1]}") t1=$(date +%s%N)
mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v hz="$(getconf CLK_TCK)" -v s="$(((t1 - t0) / 1000000))" 'BEGIN {
	s /= 1000; pa = 100 * a / hz / s; pb = 100 * b / hz / s
	printf "secs=%.0f A=%.3f%% B=%.3f%% B/A=%.3f load=%s\n", s, pa, pb, (pa > 0 ? pb / pa : 0), "'"$(cut -d' ' -f1-3 /proc/loadavg)"'"
}'
echo "rss_mib A=$(mib "${pids[0]}" VmRSS) B=$(mib "${pids[1]}" VmRSS) peak_mib A=$(mib "${pids[0]}" VmHWM) B=$(mib "${pids[1]}" VmHWM)"
