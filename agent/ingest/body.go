package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"time"

	"github.com/perfhound/perfhound/analyzer/profdecode"
)

// errTooSlow is a body arriving under the minimum rate.
var errTooSlow = errors.New("body arrives too slowly")

// rateReader reads a request body that must keep arriving: by grace
// after the start, and then at minRate bytes a second on average, and in
// all within max. Each read moves the connection's read deadline to the
// time by which the next bytes are due, so a client that stalls is cut
// off by the kernel's timer and one that trickles is cut off at its next
// byte; no request holds a slot longer than its bytes justify.
type rateReader struct {
	r          io.Reader
	rc         *http.ResponseController
	start      time.Time
	minRate    int64
	grace, max time.Duration
	n          int64
}

func newRateReader(r io.Reader, w http.ResponseWriter, o Options) *rateReader {
	rr := &rateReader{r: r, rc: http.NewResponseController(w), start: time.Now(), minRate: o.MinRate, grace: o.ReadGrace, max: o.MaxReadTime}
	// A ResponseWriter that cannot set deadlines (a test recorder, a
	// wrapper without Unwrap) still gets the check after every read.
	_ = rr.rc.SetReadDeadline(rr.due())
	return rr
}

// due is when the bytes after the first n must have started to arrive.
func (r *rateReader) due() time.Time {
	d := r.grace + time.Duration(float64(r.n)/float64(r.minRate)*float64(time.Second))
	return r.start.Add(min(d, r.max))
}

func (r *rateReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, errTooSlow
	}
	if err == nil && time.Now().After(r.due()) {
		return n, errTooSlow
	}
	if n > 0 {
		_ = r.rc.SetReadDeadline(r.due())
	}
	return n, err
}

// done lifts the deadline once the body is read: the server sets its own
// for the connection's next request.
func (r *rateReader) done() { _ = r.rc.SetReadDeadline(time.Time{}) }

// ledger is what one request has charged to the budget: its buffers
// while it is handled, refunded when it ends.
type ledger struct {
	b *profdecode.Budget
	n int64
}

func (l *ledger) charge(n int64) error {
	if err := l.b.Charge(n); err != nil {
		return err
	}
	l.n += n
	return nil
}

func (l *ledger) refund(n int64) {
	l.b.Refund(n)
	l.n -= n
}

func (l *ledger) close() { l.refund(l.n) }

// readAll reads r into a buffer whose every allocation is charged first:
// of hint bytes when the sender said how many (Content-Length), growing
// by doubling otherwise.
func readAll(r io.Reader, hint int64, l *ledger) ([]byte, error) {
	size := int64(4096)
	if hint > 0 {
		size = hint + 1 // room to see EOF without growing
	}
	if err := l.charge(size); err != nil {
		return nil, err
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			if err := l.charge(int64(2 * cap(b))); err != nil {
				return nil, err
			}
			b = append(make([]byte, 0, 2*cap(b)), b...)
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// sampleTypeConfig is the SDK's description of each sample type.
type sampleTypeConfig map[string]struct {
	Units       string `json:"units"`
	Aggregation string `json:"aggregation"`
	DisplayName string `json:"display-name"`
	Sampled     bool   `json:"sampled"`
	Cumulative  bool   `json:"cumulative"`
}

// splitBody returns the profile bytes and the optional sample type config
// of a body read whole: multipart/form-data as the SDKs send it, or the
// profile itself.
func splitBody(contentType string, body []byte, l *ledger) ([]byte, sampleTypeConfig, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt != "multipart/form-data" {
		if len(body) == 0 {
			return nil, nil, badRequest("empty body")
		}
		return body, nil, nil
	}
	if params["boundary"] == "" {
		return nil, nil, badRequest("multipart body without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var (
		prof   []byte
		config sampleTypeConfig
	)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, badRequest("multipart body: %v", err)
		}
		switch name := part.FormName(); name {
		case "profile", "sample_type_config":
			b, err := readAll(part, 0, l)
			if errors.Is(err, profdecode.ErrOverBudget) {
				return nil, nil, err
			}
			if err != nil {
				return nil, nil, badRequest("part %q: %v", name, err)
			}
			if name == "sample_type_config" {
				if err := json.Unmarshal(b, &config); err != nil {
					return nil, nil, badRequest("sample_type_config: %v", err)
				}
				continue
			}
			if prof != nil {
				return nil, nil, badRequest("two \"profile\" parts")
			}
			prof = b
		case "prev_profile":
			// Deprecated by the SDKs (cumulative profiles); ignored.
		default:
			return nil, nil, badRequest("unexpected part %s (want profile, sample_type_config)", short(name))
		}
	}
	if prof == nil {
		return nil, nil, badRequest("no \"profile\" part")
	}
	return prof, config, nil
}

// gunzip decompresses a gzipped profile within max bytes, charging the
// output before it exists: as much as the gzip trailer says (true of any
// profile a pprof writer gzipped) and, only when the data turns out to
// inflate further, up to max.
func gunzip(data []byte, max int64, l *ledger) ([]byte, error) {
	claim := max
	if len(data) >= 18 { // header, and the trailer's CRC and size
		claim = min(int64(binary.LittleEndian.Uint32(data[len(data)-4:])), max)
	}
	if err := l.charge(claim + 1); err != nil {
		return nil, err
	}
	out, err := profdecode.Gunzip(data, claim)
	if errors.Is(err, profdecode.ErrTooLarge) && claim < max {
		if err := l.charge(max - claim); err != nil {
			return nil, err
		}
		out, err = profdecode.Gunzip(data, max)
	}
	if err == nil && profdecode.IsGzip(out) {
		// pprof's parser would inflate the inner layer without a bound.
		return nil, profdecode.ErrNestedGzip
	}
	return out, err
}
