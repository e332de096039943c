package otlp

import (
	"fmt"
	"net/http"
	"strings"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/perfhound/perfhound/agent/forward"
)

// The OTLP specification's failure table decides which answers are
// worth retrying; the otlp receiver answers a permanent error of its
// pipeline with Internal (HTTP 500) and a transient one with
// Unavailable (503). Answers that say the agent is misconfigured
// (unauthenticated, forbidden, not found, unimplemented) wrap neither
// sentinel: the delivery loop retries them, so that fixing the
// configuration delivers what was spooled instead of dropping it.

// grpcError classifies a failed gRPC export.
func grpcError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		// The context's own deadline or cancellation.
		return fmt.Errorf("%w: %v", forward.ErrUnavailable, err)
	}
	return classify(codeClass(st.Code()), "grpc "+st.Code().String(), st.Message())
}

type class int

const (
	neither class = iota
	invalid
	unavailable
)

func codeClass(c codes.Code) class {
	switch c {
	case codes.InvalidArgument, codes.Internal:
		return invalid
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded,
		codes.Canceled, codes.Aborted, codes.OutOfRange, codes.DataLoss:
		return unavailable
	}
	return neither
}

func statusClass(code int) class {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusInternalServerError:
		return invalid
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return unavailable
	}
	return neither
}

func classify(c class, what, msg string) error {
	switch c {
	case invalid:
		return fmt.Errorf("%w: %s: %s", forward.ErrInvalid, what, msg)
	case unavailable:
		return fmt.Errorf("%w: %s: %s", forward.ErrUnavailable, what, msg)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// httpError classifies an HTTP answer other than 200, with the
// google.rpc.Status message the receiver puts in its body.
func httpError(code int, contentType string, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if strings.HasPrefix(contentType, "application/x-protobuf") {
		var st spb.Status
		if proto.Unmarshal(body, &st) == nil {
			msg = st.GetMessage()
		}
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return classify(statusClass(code), fmt.Sprintf("http %d", code), msg)
}

// partialSuccess turns an answer that rejected some profiles into
// ErrInvalid: what was refused would be refused again.
func partialSuccess(resp pprofileotlp.ExportResponse, sent int) error {
	ps := resp.PartialSuccess()
	if ps.RejectedProfiles() == 0 {
		return nil
	}
	return fmt.Errorf("%w: the backend rejected %d of %d profiles: %s", forward.ErrInvalid, ps.RejectedProfiles(), sent, ps.ErrorMessage())
}
