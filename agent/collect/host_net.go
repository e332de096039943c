package collect

import (
	"context"

	"github.com/shirou/gopsutil/v4/net"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.net: traffic per network interface from /proc/net/dev, through
// gopsutil's net.IOCounters.
//
//	host.net.bytes{interface, dir="in"|"out"}     "bytes/s"
//	host.net.packets{interface, dir}              "count/s"
//	host.net.errors{interface, dir}               "count/s"
//	host.net.drops{interface, dir}                "count/s"
//
// Interfaces whose counters are all zero (down since boot, unused ifb or
// dummy devices) are skipped. gopsutil skips a line of /proc/net/dev with
// fewer than 13 counters without an error; a counter that does not parse
// is an error.

func init() { Register(observation.SignalHostNet, newHostNet) }

type hostNet struct{ env Env }

func newHostNet(env Env, _ Target) (Sampler, error) {
	return &hostNet{env: env.withDefaults()}, nil
}

func (*hostNet) Name() observation.Signal { return observation.SignalHostNet }

func (s *hostNet) Sample(ctx context.Context, rec *Recorder) error {
	path := s.env.proc("net", "dev")
	nics, err := net.IOCountersWithContext(s.env.gopsutil(ctx), true)
	if err != nil {
		return fileError(path, err)
	}
	for _, n := range nics {
		if n.BytesRecv|n.BytesSent|n.PacketsRecv|n.PacketsSent|n.Errin|n.Errout|n.Dropin|n.Dropout == 0 {
			continue
		}
		for _, c := range []struct {
			name observation.SeriesName
			dir  string
			v    uint64
		}{
			{observation.HostNetBytes, "in", n.BytesRecv},
			{observation.HostNetBytes, "out", n.BytesSent},
			{observation.HostNetPackets, "in", n.PacketsRecv},
			{observation.HostNetPackets, "out", n.PacketsSent},
			{observation.HostNetErrors, "in", n.Errin},
			{observation.HostNetErrors, "out", n.Errout},
			{observation.HostNetDrops, "in", n.Dropin},
			{observation.HostNetDrops, "out", n.Dropout},
		} {
			rec.Counter(c.name, map[string]string{"interface": n.Name, "dir": c.dir}, float64(c.v))
		}
	}
	return nil
}
