#!/bin/sh
# record.sh re-records the fixture trees the collect tests run on: two
# snapshots, t0 and t1, of the /proc, /sys and cgroup v2 files the samplers
# read, taken a couple of seconds apart while a workload runs, so that every
# counter the tests check moves between them.
#
#	cd agent/collect/testdata && sudo ./record.sh
#
# The target process is a multi-threaded xz compressing /dev/urandom (CPU
# on several threads, read syscalls); between the snapshots a dd with fsync
# moves the disk counters and a loopback TCP exchange (python3) the network
# and TCP ones. Its PID is written to ./pid. After re-recording,
# the expected values in fixture_test.go must be worked out again from the
# new files: the tests compare against numbers computed by hand.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

xz -T2 -0 </dev/urandom >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1

# The cgroup v2 mount, from mountinfo: the mount point is field 5, the
# filesystem type the first field after " - ".
cg2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -n1)
cgpath=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")

copy() { # copy SRC DST: cat, because /proc files report size 0
	mkdir -p "$(dirname "$2")"
	cat "$1" >"$2"
}

snapshot() {
	d=$1
	rm -rf "$d"
	for f in stat loadavg meminfo vmstat diskstats net/dev net/snmp net/netstat \
		pressure/cpu pressure/memory pressure/io; do
		copy "/proc/$f" "$d/proc/$f"
	done
	# Of mountinfo only the cgroup mounts are read (and the rest says
	# more about this machine than the tests need); of the process's
	# cgroup file only the v2 line.
	mkdir -p "$d/proc/self" "$d/proc/$pid"
	awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) ~ /^cgroup2?$/) print; break } }' \
		/proc/self/mountinfo >"$d/proc/self/mountinfo"
	grep '^0::' "/proc/$pid/cgroup" >"$d/proc/$pid/cgroup"
	for f in stat status io schedstat; do
		copy "/proc/$pid/$f" "$d/proc/$pid/$f"
	done
	for t in /proc/$pid/task/*; do
		tid=${t##*/}
		for f in stat status schedstat; do
			copy "$t/$f" "$d/proc/$pid/task/$tid/$f" 2>/dev/null || true
		done
	done
	# Open file descriptors as empty files: the samplers only count them.
	mkdir -p "$d/proc/$pid/fd"
	for fd in /proc/$pid/fd/*; do
		: >"$d/proc/$pid/fd/${fd##*/}"
	done
	# Whole disks are the entries of /sys/block; keep each one's dev file
	# so that the directory exists in git.
	for b in /sys/block/*; do
		copy "$b/dev" "$d/sys/block/${b##*/}/dev"
	done
	if [ -n "$cg2" ]; then
		for f in cpu.pressure memory.pressure io.pressure; do
			copy "$cg2$cgpath/$f" "$d/cgroup$cgpath/$f"
		done
	fi
}

# tcp_exchange opens a few loopback connections, sends 1 MiB over each and
# keeps the last one open for 5 s, so CurrEstab is not zero at t1.
tcp_exchange() {
	python3 - <<'PY'
import socket, threading, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
def serve():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=lambda c=c: [None for _ in iter(lambda: c.recv(65536), b"")], daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
conns = []
for _ in range(4):
    s = socket.create_connection(srv.getsockname())
    s.sendall(b"x" * (1 << 20))
    conns.append(s)
for s in conns[:-1]:
    s.close()
time.sleep(5)
PY
}

snapshot t0
tcp_exchange &
tcp=$!
dd if=/dev/zero of="$here/.record.tmp" bs=1M count=32 conv=fsync status=none
rm -f "$here/.record.tmp"
sleep 2
snapshot t1
wait $tcp
echo "$pid" >pid
echo "recorded pid $pid into $here/t0 and $here/t1"
