#!/usr/bin/env bash
# perfhound agent's own cost, as docs/benchmarks.md reports it: a service
# under load (fixtures/goservice: a core of SHA-256, a few hundred MB/s of
# allocations, a contended mutex) and HOSTPROCS other processes waking
# every 200 ms (cwork naps), then `perfhound agent` at its defaults (19 Hz,
# off-CPU 1 in 4, 10 s windows and interval) for WARMUP seconds and then
# MINUTES minutes, ROUNDS times. From the kernel, over the MINUTES after
# the warm-up:
#   cpu     the agent's utime + stime (/proc/PID/stat), % of one core
#   bpf     run_time_ns of the agent's BPF programs (fdinfo of its prog
#           fds, kernel.bpf_stats_enabled on for the round, restored
#           after), % of one core: time the watched threads pay
#   rss     steady (median of one reading a minute) and peak (VmHWM, the
#           whole run, loading included)
#   disk    growth of the store's pages in use (/metrics'
#           perfhound_agent_store_bytes) and of the file, per hour, times
#           24 for a day: the raw tier's rate; rollups start after 6 h, so
#           a real day is below it. Once the agent has stopped, a copy of
#           the store is rolled up as if 7 h had passed (storesize -age):
#           the 1-minute tier's size over the raw one's, r, makes a day's
#           estimate 6 h raw + 18 h at r times the raw rate
# and the store by series (storesize).
# Prints each round, then the medians. Run as root; needs gcc and curl.
#
# BASE=REV measures the agent built from git revision REV beside the
# working tree's: rounds alternate (base, head, base, head, ...; ROUNDS
# each), so both see the same machine, and the medians are given for each
# with head's CPU over base's.
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-3}
MINUTES=${MINUTES:-10}
WARMUP=${WARMUP:-60}
HOSTPROCS=${HOSTPROCS:-100}
[ "$(id -u)" = 0 ] || { echo "needs root (eBPF)" >&2; exit 1; }
tmp=$(mktemp -d)
bg=()
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	[ ${#bg[@]} -eq 0 ] || kill "${bg[@]}" 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$stats_was"
	[ ! -d "$tmp/base" ] || git worktree remove --force "$tmp/base" || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/perfhound" ./cmd/perfhound
builds=(head)
if [ -n "${BASE:-}" ]; then
	git worktree add -q --detach "$tmp/base" "$BASE"
	(cd "$tmp/base" && go build -o "$tmp/perfhound-base" ./cmd/perfhound)
	git worktree remove --force "$tmp/base"
	builds=(base head)
fi
go build -o "$tmp/goservice" ./fixtures/goservice
go build -o "$tmp/storesize" ./agent/daemon/bench/storesize
gcc -O1 -fno-omit-frame-pointer -pthread -o "$tmp/cwork" fixtures/workloads/c/cwork.c
hz=$(getconf CLK_TCK)

# The readings inside the measured span start no process: every program
# the host starts is one the agent watches, identifies and symbolizes (an
# awk per file descriptor of the agent, as this script once ran, cost the
# agent more than a tenth of its CPU).
ticks=0
cpu_ticks() { # sets ticks to utime + stime, without a subshell; after the ")" no field has spaces
	local line
	read -r line <"/proc/$1/stat"
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- ${line##*) }
	ticks=$((${12} + ${13}))
}
kib() {
	local k v rest
	while read -r k v rest; do
		[ "$k" = "$2:" ] && { echo "$v"; return; }
	done <"/proc/$1/status"
}
bpf_ns() { # run_time_ns summed over the prog fds of PID: two processes, outside the span
	# An fd closed after the glob is a file grep cannot read: its status 2.
	{ grep -s -H -E '^(prog_id|run_time_ns):' /proc/"$1"/fdinfo/* || true; } |
		awk -F'[:[:space:]]+' '$2 == "prog_id" { p[$1] = 1 } $2 == "run_time_ns" { r[$1] = $3 } END { s = 0; for (f in p) s += r[f]; printf "%.0f\n", s }'
}
metric() { curl -sf "$1/metrics" | awk -v m="$2" '$1 == m { printf "%d\n", $2 }'; }

# rollup_ratio: the windows' bytes after a 7 h rollup (1-minute slots) of
# a copy of the store over before.
rollup_ratio() {
	rm -rf "$tmp/aged"
	cp -r "$tmp/data" "$tmp/aged"
	local before after
	before=$("$tmp/storesize" "$tmp/aged" | sed -n 's/^keys and values \([0-9]*\) B.*/\1/p')
	after=$("$tmp/storesize" -age 7h "$tmp/aged" | sed -n 's/^keys and values \([0-9]*\) B.*/\1/p')
	awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f\n", a / b }'
}

round() {
	local r=$1 build=$2 total=$((WARMUP + MINUTES * 60 + 60)) i bin="$tmp/perfhound"
	[ "$build" = head ] || bin="$tmp/perfhound-$build"
	"$tmp/goservice" -duration "${total}s" >/dev/null &
	bg+=($!)
	for _ in $(seq "$HOSTPROCS"); do
		"$tmp/cwork" naps "$((total * 5))" 200000 &
		bg+=($!)
	done
	rm -rf "$tmp/data"
	"$bin" agent --data-dir "$tmp/data" --listen 127.0.0.1:0 2>"$tmp/agent.log" &
	local pid=$!
	local url=
	for _ in $(seq 600); do # the first window stored
		grep -q 'msg=collecting' "$tmp/agent.log" && break
		kill -0 "$pid" || { cat "$tmp/agent.log" >&2; exit 1; }
		sleep 0.1
	done
	url=$(sed -n 's/.*listen=\(http:[^ ]*\)\/ .*/\1/p' "$tmp/agent.log" | head -1)
	sleep "$WARMUP"
	local t0 c0 b0 u0 f0
	# The store's size first, then the counters: curl's first run in a
	# round maps libcurl and its thirty-odd libraries, which the agent
	# identifies and parses as it would any new program's; inside the
	# measured span that is the script's cost, not the host's. The agent
	# reads a new program's objects when it sees the exec: two seconds are
	# ample.
	u0=$(metric "$url" perfhound_agent_store_bytes)
	f0=$(metric "$url" perfhound_agent_store_file_bytes)
	b0=$(bpf_ns "$pid")
	sleep 2
	t0=$EPOCHREALTIME
	cpu_ticks "$pid"
	c0=$ticks
	: >"$tmp/rss"
	for i in $(seq "$MINUTES"); do
		sleep 60
		kib "$pid" VmRSS >>"$tmp/rss"
	done
	local t1 c1 b1 u1 f1 hwm services
	cpu_ticks "$pid"
	c1=$ticks
	t1=$EPOCHREALTIME
	b1=$(bpf_ns "$pid")
	hwm=$(kib "$pid" VmHWM)
	u1=$(metric "$url" perfhound_agent_store_bytes)
	f1=$(metric "$url" perfhound_agent_store_file_bytes)
	services=$(metric "$url" perfhound_agent_services)
	kill -TERM "$pid"
	wait "$pid" || true
	kill "${bg[@]}" 2>/dev/null || true
	wait "${bg[@]}" 2>/dev/null || true
	bg=()
	local procs
	procs=$(ls -d /proc/[0-9]* | wc -l)
	awk -v r="$r" -v build="$build" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$hz" -v b="$((b1 - b0))" \
		-v rss="$(sort -n "$tmp/rss" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" -v hwm="$hwm" \
		-v u="$((u1 - u0))" -v f="$((f1 - f0))" -v used="$u1" -v svc="$services" -v ratio="$(rollup_ratio)" 'BEGIN {
		s = t1 - t0; raw = u / s * 3600 / 1048576
		printf "round=%d build=%s secs=%.0f cpu=%.3f bpf=%.3f rss_mib=%.1f hwm_mib=%.1f used_mib_day=%.0f file_mib_day=%.0f used_mib_end=%.1f services=%d rollup_1m=%.2f day_mib=%.0f\n",
			r, build, s, 100 * c / hz / s, 100 * b / 1e9 / s, rss / 1024, hwm / 1024, 24 * raw, f / s * 86400 / 1048576, used / 1048576, svc, ratio, 6 * raw + 18 * raw * ratio
	}'
	"$tmp/storesize" -top 12 "$tmp/data" >"$tmp/series.$r"
	grep -c 'level=ERROR' "$tmp/agent.log" | sed 's/^/agent log errors: /' >&2 || true
}

echo "# perfhound agent's cost: $ROUNDS rounds of ${WARMUP}s + ${MINUTES} min; goservice + $HOSTPROCS cwork naps; $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
sysctl -qw kernel.bpf_stats_enabled=1
for r in $(seq "$ROUNDS"); do
	for b in "${builds[@]}"; do
		round "$r" "$b"
	done
done | tee "$tmp/runs"
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

awk '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{
	split($2, p, "="); b = p[2]; if (!(b in seen)) { seen[b] = 1; order[++nb] = b }; n[b]++
	for (i = 4; i <= NF; i++) { split($i, p, "="); v[b, p[1]] = v[b, p[1]] " " p[2] }
}
END {
	printf "\nmedians over %d rounds each:\n", n[order[1]]
	printf "| build | agent CPU (user+system) | its BPF programs | steady RSS | peak RSS (VmHWM) | disk a day, raw tier (pages in use) | file growth a day | 1-min tier / raw | a day: 6 h raw + 18 h 1-min | services a window |\n|---|---|---|---|---|---|---|---|---|---|\n"
	for (k = 1; k <= nb; k++) {
		b = order[k]; cpu[b] = median(v[b, "cpu"])
		printf "| %s | %.2f%% of one core | %.3f%% of one core | %.1f MiB | %.1f MiB | %d MiB | %d MiB | %.2f | %d MiB | %d |\n", b,
			cpu[b], median(v[b, "bpf"]), median(v[b, "rss_mib"]), median(v[b, "hwm_mib"]), median(v[b, "used_mib_day"]), median(v[b, "file_mib_day"]), median(v[b, "rollup_1m"]), median(v[b, "day_mib"]), median(v[b, "services"])
	}
	if (nb == 2 && cpu["base"] > 0) printf "\nhead CPU / base CPU: %.3f\n", cpu["head"] / cpu["base"]
}' "$tmp/runs"
echo
echo "store by series after the last round (${WARMUP}s + ${MINUTES} min):"
cat "$tmp/series.$ROUNDS"
