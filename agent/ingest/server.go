package ingest

import (
	"errors"
	"net/http"
	"time"
)

// Server returns an http.Server for addr serving the handler at /ingest,
// with the settings the handler needs from whatever server mounts it:
//   - ReadHeaderTimeout 10 s: the handler sees a request, and can hold
//     its body to a minimum rate, only once its headers have arrived;
//   - IdleTimeout 120 s: a kept-alive connection that sends nothing more
//     is closed;
//   - MaxHeaderBytes 64 KiB: a name of 30 labels fits;
//   - WriteTimeout past the slot wait, the body's read time and the
//     parse, so that a request read in full is always answered (an
//     unanswered SDK gives up, and the profile would be lost).
//
// The body's deadlines are the handler's own (Options.MinRate), so that
// no ReadTimeout cuts off a big push arriving at a good rate. The handler
// answers 500 under a server without the first two settings.
func (h *Handler) Server(addr string) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/ingest", h)
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		WriteTimeout:      h.opts.SlotWait + h.opts.MaxReadTime + 30*time.Second,
	}
}

// checkServer refuses a server that lets a client hold a connection
// before the handler sees it, or forever after: without a header timeout
// and an idle timeout (or a ReadTimeout standing for both).
func checkServer(r *http.Request) error {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil // not net/http's server: a test's recorder
	}
	if srv.ReadTimeout <= 0 && (srv.ReadHeaderTimeout <= 0 || srv.IdleTimeout <= 0) {
		return errors.New("the server has no ReadHeaderTimeout or IdleTimeout, so slow clients could hold its connections: serve the handler with ingest.Handler.Server or its settings")
	}
	return nil
}
