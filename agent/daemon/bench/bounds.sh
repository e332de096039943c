#!/usr/bin/env bash
# The agent's peak RSS (VmHWM) under the loads issue 14 bounds memory
# against, each on a fresh agent at its defaults (eBPF on), as
# docs/benchmarks.md reports it:
#   idle      nothing added, for the same time (the baseline)
#   churn     RATE process starts a second (churn.c: fork + exec /bin/true)
#             for SECS seconds
#   services  NSVC short-lived services: copies (hard links) of cwork under
#             NSVC names, each napping for 1 s, started evenly over SECS
#   flood     FLOODC clients pushing a real SDK request
#             (agent/ingest/testdata/sdk-cpu.http, each client 4 apps) to
#             /ingest as fast as it answers, for SECS
#   floodbig  8 clients pushing a real 52,380-sample CPU profile
#             (fixtures/profiles/compile-cpu.pb.gz, 0.9 MB) as pprof
# Each scenario: the agent's first window stored, the load, then two more
# windows; the agent runs under a 4 GB address-space cap (prlimit --as).
# Run as root; needs gcc and prlimit (util-linux).
set -euo pipefail
cd "$(dirname "$0")/../../.."

SECS=${SECS:-60}
RATE=${RATE:-1000}
NSVC=${NSVC:-2000}
FLOODC=${FLOODC:-32}
SCENARIOS=${SCENARIOS:-idle churn services flood floodbig}
[ "$(id -u)" = 0 ] || { echo "needs root (eBPF)" >&2; exit 1; }
tmp=$(mktemp -d)
agent=
cleanup() {
	[ -z "$agent" ] || kill "$agent" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/perfhound" ./cmd/perfhound
go build -o "$tmp/flood" ./agent/daemon/bench/flood
gcc -O1 -o "$tmp/churn" agent/daemon/bench/churn.c
gcc -O1 -fno-omit-frame-pointer -pthread -o "$tmp/cwork" fixtures/workloads/c/cwork.c
mkdir "$tmp/svc"
for i in $(seq -w 1 "$NSVC"); do ln "$tmp/cwork" "$tmp/svc/svc$i"; done

kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

scenario() {
	local name=$1
	rm -rf "$tmp/data"
	prlimit --as=4000000000 "$tmp/perfhound" agent --data-dir "$tmp/data" --listen 127.0.0.1:0 2>"$tmp/agent.log" &
	agent=$!
	for _ in $(seq 600); do
		grep -q 'msg=collecting' "$tmp/agent.log" && break
		kill -0 "$agent" || { cat "$tmp/agent.log" >&2; exit 1; }
		sleep 0.1
	done
	local url before out=""
	url=$(sed -n 's/.*listen=\(http:[^ ]*\)\/ .*/\1/p' "$tmp/agent.log" | head -1)
	before=$(kib "$agent" VmHWM)
	case $name in
	idle) sleep "$SECS" ;;
	churn) out=$("$tmp/churn" "$((RATE / 2))" "$SECS" /bin/true & "$tmp/churn" "$((RATE / 2))" "$SECS" /bin/true; wait) ;;
	services)
		local i=0 f svcs=()
		for f in "$tmp"/svc/*; do
			"$f" naps 10 100000 &
			svcs+=($!)
			i=$((i + 1))
			[ $((i % 10)) -ne 0 ] || sleep "$(echo "$SECS * 10 / $NSVC" | bc -l)"
		done
		wait "${svcs[@]}"
		out="started $i services"
		;;
	flood) out=$("$tmp/flood" -url "$url" -c "$FLOODC" -d "${SECS}s" -capture agent/ingest/testdata/sdk-cpu.http | tr '\n' ';') ;;
	floodbig) out=$("$tmp/flood" -url "$url" -c 8 -d "${SECS}s" -pprof fixtures/profiles/compile-cpu.pb.gz | tr '\n' ';') ;;
	esac
	sleep 25 # two more windows: what the load left is drained and stored
	local peak rss
	peak=$(kib "$agent" VmHWM)
	rss=$(kib "$agent" VmRSS)
	kill -TERM "$agent"
	wait "$agent" || true
	agent=
	printf '%s: peak RSS %.1f MiB (%.1f MiB before the load), RSS at the end %.1f MiB; errors logged %d; %s\n' \
		"$name" "$(echo "$peak / 1024" | bc -l)" "$(echo "$before / 1024" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
		"$(grep -c 'level=ERROR' "$tmp/agent.log" || true)" "$out"
}

echo "# agent memory bounds: ${SECS}s loads; $(nproc) CPUs, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SCENARIOS; do
	scenario "$s"
done
