// Package forward sends what the agent stores to the backends a fleet
// runs: Grafana Pyroscope (push.v1) and OpenTelemetry Collectors (OTLP
// profiles). The store is the spool: a sink reads windows from it behind
// its own cursor, so a backend's outage costs nothing up to the
// retention period.
package forward

import (
	"context"
	"errors"
	"time"

	"github.com/google/pprof/profile"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// Window is one stored window of one service and version, as a sink
// sends it: its profiles and who they belong to.
type Window struct {
	Service string // the agent's service name (Pyroscope's service_name, OTLP's service.name)
	Version string // the version the agent assigned (a build ID, or a label)
	Host    string // the host's name
	// Labels are the window's labels after the sink's relabeling: the
	// service's from the agent's config and identity (executable, build
	// ID, container, unit), without secrets.
	Labels     map[string]string
	Start, End time.Time
	Profiles   []Profile
}

// Profile is one profile of a window.
type Profile struct {
	Kind    observation.ProfileKind
	Profile *profile.Profile
}

// Sink delivers windows to one backend. Send returns nil once the
// backend has acknowledged the window; otherwise an error that wraps
// ErrInvalid (the backend refused the data itself: retrying cannot help)
// or ErrUnavailable (down, overloaded, timed out: retry later). An error
// wrapping neither is treated as ErrUnavailable.
type Sink interface {
	Send(ctx context.Context, w Window) error
}

var (
	ErrInvalid     = errors.New("refused by the backend")
	ErrUnavailable = errors.New("backend unavailable")
)
