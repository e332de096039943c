package collect

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.disk: block device activity from /proc/diskstats, per whole disk.
//
//	host.disk.ops{device, op="read"|"write"}     completed requests, "ops/s"
//	host.disk.bytes{device, op}                  "bytes/s" (sectors are 512 bytes in diskstats)
//	host.disk.await{device, op}                  mean time per completed request over the interval, queueing included, "seconds"
//	host.disk.utilization{device}                share of the interval with a request in flight (io_ticks), "ratio"
//	host.disk.queue{device}                      mean requests in flight (weighted time / interval), "count"
//	host.disk.in_flight{device}                  requests in flight now, "count"
//
// Whole disks are the devices listed in SysFS/block (partitions are not),
// so a partition's I/O is counted once, in its disk. Device-mapper and md
// devices are whole disks too: their I/O also appears in the disks under
// them. Devices that have completed no request since boot (idle loop, ram
// and zram devices) are skipped. await has no point for an interval
// without completed requests of that kind.
//
// The file is read here rather than through gopsutil: disk.IOCounters
// reads each device's udev database entry under /run and a sysfs label on
// every call (neither is used here, and /run is outside Env), and skips
// malformed lines without saying so.

func init() { Register(observation.SignalHostDisk, newHostDisk) }

type hostDisk struct {
	env  Env
	prev map[string]diskStat
}

func newHostDisk(env Env, _ Target) (Sampler, error) {
	return &hostDisk{env: env.withDefaults(), prev: map[string]diskStat{}}, nil
}

func (*hostDisk) Name() observation.Signal { return observation.SignalHostDisk }

// diskStat is one line of /proc/diskstats (times in milliseconds).
type diskStat struct {
	name                          string
	reads, readSectors, readMs    uint64
	writes, writeSectors, writeMs uint64
	inFlight, ioMs, weightedMs    uint64
}

func (s *hostDisk) Sample(_ context.Context, rec *Recorder) error {
	path := s.env.proc("diskstats")
	b, err := readFile(path)
	if err != nil {
		return err
	}
	stats, err := parseDiskstats(path, b)
	if err != nil {
		return err
	}
	blockDir := s.env.sys("block")
	entries, err := os.ReadDir(blockDir)
	if err != nil {
		return fmt.Errorf("listing whole disks: %w", err)
	}
	whole := make(map[string]bool, len(entries))
	for _, e := range entries {
		// sysfs spells a "/" in a device name (cciss/c0d0) as "!".
		whole[strings.ReplaceAll(e.Name(), "!", "/")] = true
	}
	next := make(map[string]diskStat, len(stats))
	for _, d := range stats {
		if !whole[d.name] || d.reads == 0 && d.writes == 0 {
			continue
		}
		next[d.name] = d
		dev := func(kv ...string) map[string]string {
			m := map[string]string{"device": d.name}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		rec.Counter(observation.HostDiskOps, dev("op", "read"), float64(d.reads))
		rec.Counter(observation.HostDiskOps, dev("op", "write"), float64(d.writes))
		rec.Counter(observation.HostDiskBytes, dev("op", "read"), float64(d.readSectors)*512)
		rec.Counter(observation.HostDiskBytes, dev("op", "write"), float64(d.writeSectors)*512)
		// io_ticks and the weighted time are milliseconds: as seconds,
		// their rates are the busy share and the mean queue length.
		rec.Counter(observation.HostDiskUtil, dev(), float64(d.ioMs)/1000)
		rec.Counter(observation.HostDiskQueue, dev(), float64(d.weightedMs)/1000)
		rec.Gauge(observation.HostDiskInFlight, dev(), float64(d.inFlight))
		if p, ok := s.prev[d.name]; ok {
			if n, ms := d.reads-p.reads, d.readMs-p.readMs; d.reads > p.reads && d.readMs >= p.readMs {
				rec.Gauge(observation.HostDiskAwait, dev("op", "read"), float64(ms)/1000/float64(n))
			}
			if n, ms := d.writes-p.writes, d.writeMs-p.writeMs; d.writes > p.writes && d.writeMs >= p.writeMs {
				rec.Gauge(observation.HostDiskAwait, dev("op", "write"), float64(ms)/1000/float64(n))
			}
		}
	}
	s.prev = next
	return nil
}

// parseDiskstats reads /proc/diskstats: "major minor name" and at least
// 11 counters (kernels since 4.18 add discard and flush counters, which
// are not used).
func parseDiskstats(path string, b []byte) ([]diskStat, error) {
	var out []diskStat
	err := lines(b, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) < 14 {
			return lineError(path, n, "want at least 14 fields, got %d", len(f))
		}
		var v [11]uint64
		for i := range v {
			x, err := strconv.ParseUint(f[3+i], 10, 64)
			if err != nil {
				return lineError(path, n, "%s field %d: %v", f[2], 4+i, err)
			}
			v[i] = x
		}
		out = append(out, diskStat{
			name:  f[2],
			reads: v[0], readSectors: v[2], readMs: v[3],
			writes: v[4], writeSectors: v[6], writeMs: v[7],
			inFlight: v[8], ioMs: v[9], weightedMs: v[10],
		})
		return nil
	})
	return out, err
}
