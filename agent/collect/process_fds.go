package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/perfhound/perfhound/analyzer/observation"
)

// process.fds: the target's open file descriptors, the entries of
// /proc/PID/fd, through gopsutil's Process.NumFDs.
//
//	process.fds   "count"
//
// Listing another user's descriptors needs ptrace read access; without it
// process.fds is recorded as missing with the reason.

func init() { Register(observation.SignalProcessFDs, processFactory(newProcessFDs)) }

type processFDs struct {
	w *procWatch
	p *process.Process
}

func newProcessFDs(w *procWatch) (Sampler, error) {
	// Made directly: process.NewProcess would signal the real host's PID.
	return &processFDs{w: w, p: &process.Process{Pid: int32(w.pid)}}, nil
}

func (*processFDs) Name() observation.Signal { return observation.SignalProcessFDs }

func (s *processFDs) Sample(ctx context.Context, rec *Recorder) error {
	if st, ok, err := s.w.read(); !ok || st.state == 'Z' {
		return err // a zombie's descriptors are closed
	}
	n, err := s.p.NumFDsWithContext(s.w.env.gopsutil(ctx))
	if errors.Is(err, fs.ErrPermission) {
		rec.Missing(observation.SignalProcessFDs, fmt.Sprintf("%s: permission denied: another user's descriptors need root or CAP_SYS_PTRACE", s.w.path("fd")))
		return nil
	}
	if err != nil {
		return fileError(s.w.path("fd"), s.w.failed(err))
	}
	rec.Gauge(observation.ProcessFDs, nil, float64(n))
	return nil
}
