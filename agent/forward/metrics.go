package forward

import "github.com/prometheus/client_golang/prometheus"

// Reasons a window is dropped (the dropped counter's reason label),
// besides a backend's own (RefusedError.Reason).
const (
	ReasonTooOld     = "too_old"    // older than the sink's ingestion window: it stays local
	ReasonRelabel    = "relabel"    // the sink's relabeling dropped it
	ReasonUnreadable = "unreadable" // the stored record does not decode (or is over the memory bound)
	ReasonInvalid    = "invalid"    // refused by the backend, no reason given
)

// Metrics are the forwarders' metrics, one series per sink: register
// them once (NewMetrics) and give them to every Forwarder.
type Metrics struct {
	sent    *prometheus.CounterVec
	dropped *prometheus.CounterVec
	retries *prometheus.CounterVec
	oldest  *prometheus.GaugeVec
}

// NewMetrics registers the forwarders' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_forward_windows_sent_total", Help: "Windows (one service and version each) the sink's backend acknowledged.",
		}, []string{"sink"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_forward_windows_dropped_total", Help: "Windows not sent and not to be, by reason (too_old: past the ingestion window, kept in the store; relabel; unreadable; or the backend's refusal).",
		}, []string{"sink", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perfhound_agent_forward_errors_total", Help: "Sends that failed as unavailable (down, overloaded, timed out) and are retried with backoff.",
		}, []string{"sink"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "perfhound_agent_forward_oldest_unsent_seconds", Help: "Age of the oldest window within the ingestion window not yet sent (0: none).",
		}, []string{"sink"}),
	}
	reg.MustRegister(m.sent, m.dropped, m.retries, m.oldest)
	return m
}

// forget removes a sink's series (a sink removed by a reload).
func (m *Metrics) forget(sink string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"sink": sink}
	m.sent.DeletePartialMatch(l)
	m.dropped.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.oldest.DeletePartialMatch(l)
}
