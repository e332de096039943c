package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// host.tcp: TCP counters from /proc/net/snmp (the Tcp table, RFC 1213)
// and /proc/net/netstat (the kernel's TcpExt table), as rates unless said.
//
//	host.tcp.active_opens, .passive_opens    connections opened (connect, accept), "count/s"
//	host.tcp.attempt_fails, .estab_resets    failed connects, resets of established connections, "count/s"
//	host.tcp.in_segs, .out_segs, .retrans_segs, .in_errs, .out_rsts   segments, "count/s"
//	host.tcp.curr_estab                      connections established now, a gauge, "count"
//	host.tcp.retrans_ratio                   retrans_segs / out_segs over the interval, "ratio"
//	host.tcp.listen_overflows, .listen_drops accept queue full, SYNs dropped at a listener, "count/s"
//	host.tcp.timeouts                        retransmission timer expiries (TCPTimeouts), "count/s"
//	host.tcp.syn_retrans, .fast_retrans, .slow_start_retrans, .lost_retransmit   "count/s"
//	host.tcp.abort_on_timeout, .abort_on_memory, .backlog_drop, .req_q_full_drop,
//	host.tcp.ofo_queue, .prune_called, .rcv_q_drop, .zero_window_drop, .memory_pressures   "count/s"
//
// Both files are parsed here. gopsutil's net.ProtoCounters reads only
// /proc/net/snmp, and takes the line after each header as its values
// without checking that it exists, so a truncated file panics it.
// Without /proc/net/netstat (some container runtimes) the TcpExt series
// are recorded as missing and the Tcp ones still recorded.

func init() { Register(observation.SignalHostTCP, newHostTCP) }

type hostTCP struct {
	env Env
	// retrans and out are the last RetransSegs and OutSegs, for the ratio.
	retrans, out int64
	haveLast     bool
}

func newHostTCP(env Env, _ Target) (Sampler, error) {
	return &hostTCP{env: env.withDefaults()}, nil
}

func (*hostTCP) Name() observation.Signal { return observation.SignalHostTCP }

// snmpCounter is one counter of an snmp-style table and its series.
type snmpCounter struct {
	key    string
	series observation.SeriesName
}

var tcpCounters = []snmpCounter{
	{"ActiveOpens", observation.HostTCPActiveOpens},
	{"PassiveOpens", observation.HostTCPPassiveOpens},
	{"AttemptFails", observation.HostTCPAttemptFails},
	{"EstabResets", observation.HostTCPEstabResets},
	{"InSegs", observation.HostTCPInSegs},
	{"OutSegs", observation.HostTCPOutSegs},
	{"RetransSegs", observation.HostTCPRetransSegs},
	{"InErrs", observation.HostTCPInErrs},
	{"OutRsts", observation.HostTCPOutRsts},
}

var tcpExtCounters = []snmpCounter{
	{"ListenOverflows", observation.HostTCPListenOverflows},
	{"ListenDrops", observation.HostTCPListenDrops},
	{"TCPTimeouts", observation.HostTCPTimeouts},
	{"TCPSynRetrans", observation.HostTCPSynRetrans},
	{"TCPFastRetrans", observation.HostTCPFastRetrans},
	{"TCPSlowStartRetrans", observation.HostTCPSlowStartRetrans},
	{"TCPLostRetransmit", observation.HostTCPLostRetransmit},
	{"TCPAbortOnTimeout", observation.HostTCPAbortOnTimeout},
	{"TCPAbortOnMemory", observation.HostTCPAbortOnMemory},
	{"TCPBacklogDrop", observation.HostTCPBacklogDrop},
	{"TCPReqQFullDrop", observation.HostTCPReqQFullDrop},
	{"TCPOFOQueue", observation.HostTCPOFOQueue},
	{"PruneCalled", observation.HostTCPPruneCalled},
	{"TCPRcvQDrop", observation.HostTCPRcvQDrop},
	{"TCPZeroWindowDrop", observation.HostTCPZeroWindowDrop},
	{"TCPMemoryPressures", observation.HostTCPMemoryPressures},
}

func (s *hostTCP) Sample(_ context.Context, rec *Recorder) error {
	path := s.env.proc("net", "snmp")
	b, err := readFile(path)
	if err != nil {
		return err
	}
	tables, err := parseSNMPTables(path, b)
	if err != nil {
		return err
	}
	tcp, ok := tables["Tcp"]
	if !ok {
		return fmt.Errorf("%s: no Tcp table", path)
	}
	recordCounters(rec, "Tcp", tcp, tcpCounters, path)
	if v, ok := tcp["CurrEstab"]; ok {
		rec.Gauge(observation.HostTCPCurrEstab, nil, float64(v))
	} else {
		rec.Missing(observation.Signal(observation.HostTCPCurrEstab), fmt.Sprintf("no Tcp CurrEstab in %s", path))
	}
	retrans, ok1 := tcp["RetransSegs"]
	out, ok2 := tcp["OutSegs"]
	if ok1 && ok2 {
		if s.haveLast && out > s.out && retrans >= s.retrans {
			rec.Gauge(observation.HostTCPRetransRatio, nil, float64(retrans-s.retrans)/float64(out-s.out))
		}
		s.retrans, s.out, s.haveLast = retrans, out, true
	}

	path = s.env.proc("net", "netstat")
	b, err = readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		rec.Missing(observation.SignalHostTCPExt, fmt.Sprintf("no %s: the TcpExt counters (listen overflows, timeouts) are not available", path))
		return nil
	}
	if err != nil {
		return err
	}
	tables, err = parseSNMPTables(path, b)
	if err != nil {
		return err
	}
	ext, ok := tables["TcpExt"]
	if !ok {
		return fmt.Errorf("%s: no TcpExt table", path)
	}
	recordCounters(rec, "TcpExt", ext, tcpExtCounters, path)
	return nil
}

// recordCounters records each counter of one snmp-style table as a rate,
// and each one the kernel does not have as missing.
func recordCounters(rec *Recorder, table string, values map[string]int64, counters []snmpCounter, path string) {
	for _, c := range counters {
		v, ok := values[c.key]
		if !ok {
			rec.Missing(observation.Signal(c.series), fmt.Sprintf("no %s %s in %s", table, c.key, path))
			continue
		}
		rec.Counter(c.series, nil, float64(v))
	}
}
