//go:build linux && amd64

package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// drainHash reads and deletes each element of a hash map that programs may
// still be updating: LookupAndDelete takes each element atomically, so
// no update is counted twice, and one that races the delete starts a fresh
// element for the next window.
func drainHash[K comparable, V any](m *ebpf.Map) (map[K]V, error) {
	var (
		keys []K
		k    K
	)
	it := m.Iterate()
	var skip V
	for it.Next(&k, &skip) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	out := make(map[K]V, len(keys))
	for _, k := range keys {
		var v V
		if err := m.LookupAndDelete(k, &v); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func (s *Session) readRunQueue() ([]RunQueueLatency, error) {
	coll := s.objs[string(RunQueue)]
	if coll == nil {
		return nil, nil
	}
	hists, err := drainHash[uint32, runqlatRunqHist](coll.Maps["runq_hists"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading run-queue latency: %w", err)
	}
	out := make([]RunQueueLatency, 0, len(hists))
	for pid, h := range hists {
		out = append(out, RunQueueLatency{PID: pid, Comm: cString(h.Comm[:]), Latency: histogramOf(h.Lat.Slots, h.Lat.Count, h.Lat.Sum)})
	}
	return out, nil
}

func (s *Session) readBlockIO() ([]BlockIOLatency, error) {
	coll := s.objs[string(BlockIO)]
	if coll == nil {
		return nil, nil
	}
	hists, err := drainHash[biolatBioKey, biolatBioValue](coll.Maps["bio_hists"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading block I/O latency: %w", err)
	}
	out := make([]BlockIOLatency, 0, len(hists))
	for k, v := range hists {
		dev := fmt.Sprintf("%d:%d", k.Dev>>20, k.Dev&(1<<20-1))
		out = append(out, BlockIOLatency{
			Device:  dev,
			Name:    blockDeviceName(dev),
			PID:     k.Tgid,
			Comm:    cString(v.Comm[:]),
			Op:      requestOp(k.Op),
			Latency: histogramOf(v.Lat.Slots, v.Lat.Count, v.Lat.Sum),
			Bytes:   histogramOf(v.Bytes.Slots, v.Bytes.Count, v.Bytes.Sum),
			Errors:  v.Errors,
		})
	}
	return out, nil
}

func (s *Session) readTCP() ([]TCPConnections, error) {
	coll := s.objs[string(TCP)]
	if coll == nil {
		return nil, nil
	}
	stats, err := drainHash[tcpConnKey, tcpConnStats](coll.Maps["tcp_stats"])
	if err != nil {
		return nil, fmt.Errorf("bpf: reading TCP: %w", err)
	}
	out := make([]TCPConnections, 0, len(stats))
	for k, v := range stats {
		var addr netip.Addr
		if k.Family == afInet6 {
			addr = netip.AddrFrom16(k.Daddr).Unmap()
		} else {
			addr = netip.AddrFrom4([4]byte(k.Daddr[:4]))
		}
		out = append(out, TCPConnections{
			PID:           k.Tgid,
			Comm:          cString(v.Comm[:]),
			Passive:       k.Passive != 0,
			Peer:          netip.AddrPortFrom(addr, k.Port),
			Connect:       histogramOf(v.ConnectLat.Slots, v.ConnectLat.Count, v.ConnectLat.Sum),
			Failures:      v.Failures,
			Lifetime:      histogramOf(v.Lifetime.Slots, v.Lifetime.Count, v.Lifetime.Sum),
			BytesSent:     v.BytesSent,
			BytesReceived: v.BytesReceived,
			Retransmits:   v.Retransmits,
		})
	}
	return out, nil
}

const afInet6 = 10
