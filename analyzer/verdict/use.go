package verdict

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/perfhound/perfhound/analyzer/observation"
	"github.com/perfhound/perfhound/internal/textfmt"
)

// useTable is the USE table (utilization, saturation, errors) of the
// host's CPUs, memory, disks and network interfaces, from the host.*
// series (docs/observation.md), each a mean over the window's points. A
// cell whose series is missing is nil. Rows, in order:
//
//   - "cpu": utilization is the busy cores (user, nice, system, irq,
//     softirq, steal of host.cpu{cpu=all}) over host.cpu.count, or over
//     the metadata's CPUs when that series is missing. Saturation is
//     host.psi{cpu,some} when recorded, the run queue only when not: PSI
//     covers every instant of each interval, while procs_running is a
//     snapshot taken at each reading, while the collector itself runs
//     (an idle host reads 1 to 3). Its fallback value is the runnable
//     tasks per CPU (over RunQueuePerCPU, 1: more runnable than CPUs),
//     less the reading task itself, which is always counted. No errors
//     are available.
//   - "memory": utilization is 1 - available/total. Saturation is
//     host.psi{memory,some} when recorded: PSI is the time stalled in
//     reclaim and swap-in, the direct reclaim and swap-in counters only
//     say why, so they are in its Text. Without PSI, any direct reclaim
//     scanning or swap-in in the window is saturation. Errors are the OOM
//     kills in the window.
//   - "disk NAME", for each device with I/O in the window (the collector
//     lists whole disks only, device-mapper and md ones included, so a
//     partition's I/O is in its disk's row and there is no partition row;
//     devices with no request in the window, such as idle loop devices,
//     get no row): utilization is host.disk.utilization, saturation the
//     mean requests in flight (host.disk.queue), with the await in its
//     Text. diskstats counts no errors.
//   - "net IFACE", for each interface with traffic, drops or errors in
//     the window: see netRow.
//
// Status is "errors" when errors were counted, else "saturated" when the
// saturation is over its threshold, else "busy" when the utilization is,
// else "ok".
func useTable(o *observation.Observation, th Thresholds) []Resource {
	rows := []Resource{cpuRow(o, th), memoryRow(o, th)}
	for _, dev := range labelValues(o, observation.FamilyHostDisk, "device") {
		if r, ok := diskRow(o, th, dev); ok {
			rows = append(rows, r)
		}
	}
	for _, iface := range labelValues(o, observation.FamilyHostNet, "interface") {
		if r, ok := netRow(o, th, iface); ok {
			rows = append(rows, r)
		}
	}
	return rows
}

// useRow makes a row and gives it its status.
func useRow(name string, u, s, e *Metric, busy, saturated bool) Resource {
	r := Resource{Resource: name, Utilization: u, Saturation: s, Errors: e, Status: "ok"}
	switch {
	case e != nil && e.Value > 0:
		r.Status = "errors"
	case saturated:
		r.Status = "saturated"
	case busy:
		r.Status = "busy"
	case u == nil && s == nil && e == nil:
		r.Status = "unknown"
	}
	return r
}

func cpuRow(o *observation.Observation, th Thresholds) Resource {
	cpus, cpusSignal := 0.0, string(observation.HostCPUCount)
	if n, ok := meanOf(o, observation.HostCPUCount, nil); ok && n > 0 {
		cpus = n
	} else if o.Meta.CPUs > 0 {
		cpus, cpusSignal = float64(o.Meta.CPUs), SignalMetaCPUs
	}

	var u *Metric
	busy := false
	var cores float64
	haveCores := false
	for _, mode := range []string{"user", "nice", "system", "irq", "softirq", "steal"} {
		if c, ok := meanOf(o, observation.HostCPU, map[string]string{"cpu": "all", "mode": mode}); ok {
			cores += c
			haveCores = true
		}
	}
	if haveCores && cpus > 0 {
		signal, own := seriesSignal(observation.HostCPU, "all"), ""
		// perfhound's own CPU time is in the host's: left out, and said.
		if wu, ws, ok := watcherCPU(o); ok {
			cores = max(0, cores-wu-ws)
			signal = "(" + seriesSignal(observation.HostCPU, "all") + "-" + string(observation.WatcherCPU) + ")"
			own = fmt.Sprintf("; perfhound's own %.2f cores left out", wu+ws)
		}
		v := cores / cpus
		u = &Metric{Value: v, Unit: "ratio", Signal: signal + "/" + cpusSignal, Threshold: th.CPUBusy,
			Text: fmt.Sprintf("%.0f%% of %g CPUs busy (%.2f cores%s)", 100*v, cpus, cores, own)}
		busy = v > th.CPUBusy
	}

	var s *Metric
	saturated := false
	running, haveRunning := meanOf(o, observation.HostProcsRunning, nil)
	runnable := ""
	if haveRunning {
		runnable = fmt.Sprintf("%.1f runnable", running)
		if cpus > 0 {
			runnable += fmt.Sprintf(" on %g CPUs", cpus)
		}
	}
	if psi, ok := meanOf(o, observation.HostPSI, map[string]string{"resource": "cpu", "kind": "some"}); ok {
		s = &Metric{Value: psi, Unit: "ratio", Signal: seriesSignal(observation.HostPSI, "cpu,some"), Threshold: th.PSISome,
			Text: joinText(fmt.Sprintf("some task waited for a CPU %.0f%% of the time", 100*psi), runnable)}
		saturated = psi > th.PSISome
	} else if haveRunning && cpus > 0 {
		perCPU := math.Max(0, running-1) / cpus
		s = &Metric{Value: perCPU, Unit: "count", Signal: string(observation.HostProcsRunning), Threshold: th.RunQueuePerCPU,
			Text: runnable + " (the reader included)"}
		saturated = perCPU > th.RunQueuePerCPU
	}
	return useRow("cpu", u, s, nil, busy, saturated)
}

func memoryRow(o *observation.Observation, th Thresholds) Resource {
	var u *Metric
	busy := false
	total, haveTotal := meanOf(o, observation.HostMemTotal, nil)
	if !haveTotal && o.Meta.Memory > 0 {
		total, haveTotal = float64(o.Meta.Memory), true
	}
	if avail, ok := meanOf(o, observation.HostMemAvailable, nil); ok && haveTotal && total > 0 {
		v := 1 - avail/total
		u = &Metric{Value: v, Unit: "ratio", Signal: SignalMemoryUsed, Threshold: th.MemoryUsed,
			Text: fmt.Sprintf("%.0f%% of %s in use", 100*v, textfmt.Bytes(total))}
		busy = v > th.MemoryUsed
	}

	var s *Metric
	saturated := false
	scan, haveScan := meanOf(o, observation.HostReclaimScan, map[string]string{"reclaimer": "direct"})
	swapin, haveSwapin := meanOf(o, observation.HostSwapIn, nil)
	var why []string
	if haveScan && scan > 0 {
		why = append(why, fmt.Sprintf("direct reclaim scanned %.0f pages/s", scan))
	}
	if haveSwapin && swapin > 0 {
		why = append(why, fmt.Sprintf("%.0f pages/s swapped in", swapin))
	}
	if psi, ok := meanOf(o, observation.HostPSI, map[string]string{"resource": "memory", "kind": "some"}); ok {
		s = &Metric{Value: psi, Unit: "ratio", Signal: seriesSignal(observation.HostPSI, "memory,some"), Threshold: th.PSISome,
			Text: joinText(fmt.Sprintf("some task stalled on memory %.0f%% of the time", 100*psi), why...)}
		saturated = psi > th.PSISome
	} else if haveScan || haveSwapin {
		s = &Metric{Value: scan, Unit: "pages/s", Signal: seriesSignal(observation.HostReclaimScan, "direct"), Text: "no direct reclaim or swap-in"}
		if !haveScan {
			s.Value, s.Signal = swapin, string(observation.HostSwapIn)
		}
		if len(why) > 0 {
			s.Text = strings.Join(why, "; ")
		}
		saturated = len(why) > 0
	}

	var e *Metric
	if n, ok := eventsIn(o, observation.HostOOMKills, nil); ok {
		e = &Metric{Value: n, Unit: "count", Signal: string(observation.HostOOMKills), Text: plural(n, "OOM kill")}
	}
	return useRow("memory", u, s, e, busy, saturated)
}

func diskRow(o *observation.Observation, th Thresholds, dev string) (Resource, bool) {
	l := map[string]string{"device": dev}
	if !anyNonZero(o, l, observation.HostDiskOps, observation.HostDiskBytes, observation.HostDiskUtil, observation.HostDiskQueue, observation.HostDiskInFlight) {
		return Resource{}, false
	}
	var u *Metric
	busy := false
	if v, ok := meanOf(o, observation.HostDiskUtil, l); ok {
		text := fmt.Sprintf("%.0f%% of the time busy", 100*v)
		if ops, ok := meanOf(o, observation.HostDiskOps, l); ok {
			prec := 0
			if ops < 10 {
				prec = 1
			}
			text += fmt.Sprintf(", %.*f IOPS", prec, ops)
		}
		if b, ok := meanOf(o, observation.HostDiskBytes, l); ok {
			text += fmt.Sprintf(", %s/s", textfmt.Bytes(b))
		}
		u = &Metric{Value: v, Unit: "ratio", Signal: seriesSignal(observation.HostDiskUtil, dev), Threshold: th.DiskBusy, Text: text}
		busy = v > th.DiskBusy
	}
	var s *Metric
	saturated := false
	if q, ok := meanOf(o, observation.HostDiskQueue, l); ok {
		text := fmt.Sprintf("%.2f in flight", q)
		if await, ok := diskAwait(o, l); ok && await > 0 {
			text = fmt.Sprintf("await %s, ", textfmt.Dur(await*1e9)) + text
		} else if ok {
			text = "await <1ms, " + text
		}
		s = &Metric{Value: q, Unit: "count", Signal: seriesSignal(observation.HostDiskQueue, dev), Threshold: th.DiskQueue, Text: text}
		saturated = q > th.DiskQueue
	}
	return useRow("disk "+dev, u, s, nil, busy, saturated), true
}

// diskAwait is the mean time per request completed in the window, each
// interval's await (per op) weighted by the requests it completed.
func diskAwait(o *observation.Observation, l map[string]string) (float64, bool) {
	var sum, n float64
	for _, a := range o.SeriesNamed(observation.HostDiskAwait, l) {
		ops := map[int64]float64{}
		for _, s := range o.SeriesNamed(observation.HostDiskOps, a.Labels) {
			for _, p := range s.Points {
				ops[p.Time.UnixMilli()] += p.Value
			}
		}
		for _, p := range a.Points {
			w := ops[p.Time.UnixMilli()]
			sum += w * p.Value
			n += w
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / n, true
}

// netRow is an interface's row. No link speed is recorded (and loopback
// has none), so there is no utilization: a cell of bytes/s would read as
// a ratio beside the others, so the traffic, in and out, opens the
// saturation's Text instead. Saturation is the interface's drops when it
// dropped anything (a full ring or backlog: saturated), else the host's
// TCP retransmission ratio (host.tcp.retrans_ratio, the host's and not
// the interface's: the kernel counts it for all of TCP), judged against
// RetransRatio. Errors are host.net.errors in the window, in and out.
func netRow(o *observation.Observation, th Thresholds, iface string) (Resource, bool) {
	l := map[string]string{"interface": iface}
	if !anyNonZero(o, l, observation.HostNetBytes, observation.HostNetPackets, observation.HostNetDrops, observation.HostNetErrors) {
		return Resource{}, false
	}
	traffic := ""
	in, okIn := meanOf(o, observation.HostNetBytes, map[string]string{"interface": iface, "dir": "in"})
	out, okOut := meanOf(o, observation.HostNetBytes, map[string]string{"interface": iface, "dir": "out"})
	if okIn || okOut {
		traffic = fmt.Sprintf("in %s/s, out %s/s", textfmt.Bytes(in), textfmt.Bytes(out))
	}

	var s *Metric
	saturated := false
	drops, okDrops := meanOf(o, observation.HostNetDrops, l)
	retrans, okRetrans := meanOf(o, observation.HostTCPRetransRatio, nil)
	dropText := fmt.Sprintf("%.1f drops/s", drops)
	retransText := fmt.Sprintf("host TCP retransmitted %.2f%% of segments", 100*retrans)
	switch {
	case okDrops && (drops > 0 || !okRetrans):
		s = &Metric{Value: drops, Unit: "count/s", Signal: seriesSignal(observation.HostNetDrops, iface), Text: dropText}
		if okRetrans {
			s.Text = joinText(dropText, retransText)
		}
		saturated = drops > 0
	case okRetrans:
		s = &Metric{Value: retrans, Unit: "ratio", Signal: string(observation.HostTCPRetransRatio), Threshold: th.RetransRatio, Text: retransText}
		if okDrops {
			s.Text = joinText(retransText, "no drops")
		}
		saturated = retrans > th.RetransRatio
	}
	if s != nil && traffic != "" {
		s.Text = joinText(traffic, s.Text)
	}

	var e *Metric
	if n, ok := eventsIn(o, observation.HostNetErrors, l); ok {
		e = &Metric{Value: n, Unit: "count", Signal: seriesSignal(observation.HostNetErrors, iface), Text: plural(n, "error")}
	}
	return useRow("net "+iface, nil, s, e, false, saturated), true
}

// labelValues lists, sorted, the values of a label in the series of a
// family.
func labelValues(o *observation.Observation, family observation.SeriesFamily, label string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range o.Series {
		if v := s.Labels[label]; v != "" && s.Name.In(family) && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// anyNonZero says whether any point of the named series with the labels
// is not zero.
func anyNonZero(o *observation.Observation, labels map[string]string, names ...observation.SeriesName) bool {
	for _, name := range names {
		for _, s := range o.SeriesNamed(name, labels) {
			for _, p := range s.Points {
				if p.Value != 0 {
					return true
				}
			}
		}
	}
	return false
}

// eventsIn counts the events of the count/s series with the name and
// labels over the window: each point's rate times its interval, the time
// since the previous point (for the first, since the window's start, or
// when that is unknown the next interval, or the window), rounded to
// whole events. ok is false when no such series has a point.
func eventsIn(o *observation.Observation, name observation.SeriesName, labels map[string]string) (n float64, ok bool) {
	for _, s := range o.SeriesNamed(name, labels) {
		prev := o.Meta.Start
		for i, p := range s.Points {
			ok = true
			dt := p.Time.Sub(prev).Seconds()
			if prev.IsZero() || dt <= 0 {
				if i+1 < len(s.Points) {
					dt = s.Points[i+1].Time.Sub(p.Time).Seconds()
				} else {
					dt = o.WindowSeconds()
				}
			}
			n += p.Value * dt
			prev = p.Time
		}
	}
	return math.Round(n), ok
}

func plural(n float64, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%.0f %ss", n, what)
}

// joinText joins a cell's main text and its context.
func joinText(main string, context ...string) string {
	for _, c := range context {
		if c != "" {
			main += "; " + c
		}
	}
	return main
}
