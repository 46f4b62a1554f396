package convoy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/convoykit/convoy/internal/ssrf"
)

// Headers the dispatcher sets on every request.
const (
	HeaderEventID        = "X-Convoy-Event-ID"
	HeaderDeliveryID     = "X-Convoy-Delivery-ID"
	HeaderEventType      = "X-Convoy-Event-Type"
	HeaderAttempt        = "X-Convoy-Attempt"
	HeaderIdempotencyKey = "X-Convoy-Idempotency-Key"
)

// The canonical forms of the headers above, as http.Header.Set writes them.
var (
	canonicalEventID        = http.CanonicalHeaderKey(HeaderEventID)
	canonicalDeliveryID     = http.CanonicalHeaderKey(HeaderDeliveryID)
	canonicalEventType      = http.CanonicalHeaderKey(HeaderEventType)
	canonicalAttempt        = http.CanonicalHeaderKey(HeaderAttempt)
	canonicalIdempotencyKey = http.CanonicalHeaderKey(HeaderIdempotencyKey)
)

// outcome is what the engine needs to know about an attempt beyond the
// record.
type outcome struct {
	retryAfter time.Duration // from a 429/503 Retry-After
	gone       bool          // 410
	blocked    bool          // refused by the SSRF guard
	shutdown   bool          // cut short by Close: release, don't record
	overload   bool          // timed out, or answered 429 or 503
}

// attempt makes one HTTP try and returns its record.
func (d *Dispatcher) attempt(ctx context.Context, dl *Delivery, ep *Endpoint, app *App, ev *Event) (*Attempt, outcome) {
	var out outcome
	startedAt := d.clock.Now()
	a := &Attempt{
		ID: NewID(), DeliveryID: dl.ID, EventID: dl.EventID, EndpointID: dl.EndpointID,
		Number: dl.Attempts + 1, URL: ep.URL, Method: http.MethodPost,
		RequestBody: ev.Data, StartedAt: startedAt,
	}
	h, err := d.requestHeaders(dl, ep, app, ev, a.Number, startedAt)
	a.RequestHeaders = h
	if err != nil {
		a.Error = err.Error()
		return a, out
	}

	parent := ctx // cancelled only when Close gives up waiting
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var remote string
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if ci.Conn != nil {
			if addr := ci.Conn.RemoteAddr(); addr != nil {
				remote = addr.String()
			}
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, ep.URL, bytes.NewReader(ev.Data))
	if err != nil {
		a.Error = "convoy: build request: " + err.Error()
		return a, out
	}
	req.Header = h
	req.Host = req.URL.Host

	began := time.Now()
	resp, err := d.do(req)
	if err != nil {
		a.Duration = time.Since(began)
		a.RemoteIP = hostOnly(remote)
		out.shutdown = parent.Err() != nil
		out.blocked = errors.Is(err, ErrBlockedAddress)
		out.overload = ctx.Err() != nil && parent.Err() == nil
		a.Error = describeTransportError(err, d.cfg.Timeout)
		return a, out
	}
	a.StatusCode = resp.StatusCode
	a.RemoteIP = hostOnly(remote)
	if refusal := refuseResponse(resp); refusal != "" {
		// The body is not read: after a protocol switch it is the raw
		// connection, outside the attempt's deadline.
		resp.Body.Close()
		a.Duration = time.Since(began)
		if headerSize(resp.Header) <= maxResponseHeaderBytes {
			a.ResponseHeaders = resp.Header
		}
		a.Error = refusal
		return a, out
	}
	// The response is this attempt's alone: its header is recorded as
	// is, without a copy.
	a.ResponseHeaders = resp.Header
	body, truncated, rerr := d.readBody(ctx, resp.Body)
	a.Duration = time.Since(began)
	a.ResponseBody, a.ResponseTruncated = body, truncated
	switch {
	case rerr != nil:
		out.shutdown = parent.Err() != nil
		if ctx.Err() != nil {
			// The deadline closed the body under the read.
			rerr = ctx.Err()
			out.overload = !out.shutdown
		}
		a.Error = "convoy: reading response: " + describeTransportError(rerr, d.cfg.Timeout)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.Error = fmt.Sprintf("convoy: status %d: redirects are not followed", resp.StatusCode)
	default:
		a.Error = fmt.Sprintf("convoy: status %d", resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusGone:
		out.gone = true
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		out.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.clock.Now())
		out.overload = true
	}
	return a, out
}

// do sends req: through the guarded transport itself when it is not
// wrapped, since no redirect is followed and http.Client would only copy
// the request's headers for one; else through the client. The attempt
// reads the same either way: do does what http.Client.Do does besides
// the transport's round trip (a POST, no redirect followed), which is to
// wrap errors in a *url.Error, to name an HTTP answer to an HTTPS request
// ErrSchemeMismatch, and to fail a redirect whose Location does not parse.
func (d *Dispatcher) do(req *http.Request) (*http.Response, error) {
	if !d.ownTransport {
		return d.client.Do(req)
	}
	uerr := func(err error) error { return &url.Error{Op: "Post", URL: req.URL.Redacted(), Err: err} }
	resp, err := d.guarded.RoundTrip(req)
	if err != nil {
		if rh, ok := err.(tls.RecordHeaderError); ok && string(rh.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, uerr(err)
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			if _, perr := req.URL.Parse(loc); perr != nil {
				resp.Body.Close()
				return nil, uerr(fmt.Errorf("failed to parse Location header %q: %v", loc, perr))
			}
		}
	}
	return resp, nil
}

// requestHeaders builds the headers of one attempt, signature included.
// The map is the attempt's own: it is sent, then recorded as is.
func (d *Dispatcher) requestHeaders(dl *Delivery, ep *Endpoint, app *App, ev *Event, number int, now time.Time) (http.Header, error) {
	secrets, signing := signingFor(app, ep, now)
	h := make(http.Header, 10+len(ep.Headers))
	// One backing array for the single values, instead of one allocation
	// per header.
	vals := make([]string, 0, 7+len(ep.Headers))
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range ep.Headers {
		// Validation refuses these; a store may still hold them from
		// before it did.
		if IsReservedHeader(k) || sameHeader(k, signing.Header) {
			continue
		}
		set(http.CanonicalHeaderKey(k), v)
	}
	set("Content-Type", "application/json")
	set("User-Agent", UserAgent)
	set(canonicalEventID, ev.ID)
	set(canonicalDeliveryID, dl.ID)
	set(canonicalEventType, ev.Type)
	set(canonicalAttempt, strconv.Itoa(number))
	if ev.IdempotencyKey != "" {
		set(canonicalIdempotencyKey, ev.IdempotencyKey)
	}
	if len(secrets) == 0 {
		return h, errors.New("convoy: no live secret to sign with")
	}
	sig, err := safeSign(d.cfg.Signer, SignInput{
		Signing: signing, Secrets: secrets, MessageID: dl.ID, Body: ev.Data, Time: now,
	})
	if err != nil {
		return h, fmt.Errorf("convoy: sign: %w", err)
	}
	_, fresh := d.cfg.Signer.(defaultSigner) // its headers are new and ours
	for k, vs := range sig {
		if !fresh {
			// A Signer of the user's may keep and reuse what it returned.
			vs = append([]string(nil), vs...)
		}
		h[http.CanonicalHeaderKey(k)] = vs
	}
	return h, nil
}

// safeSign calls the Signer, turning a panic into an error: a bug in a
// user's Signer fails the attempt, it does not crash the process (which
// would crash again on every restart, on the same delivery).
func safeSign(s Signer, in SignInput) (h http.Header, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("the Signer panicked: %v", r)
		}
	}()
	return s.Sign(in)
}

// signingFor returns the live secrets and the signing choice for an
// endpoint: its own when set, else its app's, with defaults filled in.
func signingFor(app *App, ep *Endpoint, now time.Time) ([]SecretValue, Signing) {
	secrets := liveSecrets(ep.Secrets, now)
	if len(secrets) == 0 {
		secrets = liveSecrets(app.Secrets, now)
	}
	s := app.Signing
	if ep.Signing.Scheme != "" {
		s = ep.Signing
	}
	return secrets, s.withDefaults()
}

// maxResponseHeaderBytes bounds the response header of an attempt, as the
// guarded transport does, whatever client sent the request.
const maxResponseHeaderBytes = ssrf.DefaultMaxResponseHeaderBytes

// refuseResponse returns why resp ends the attempt without its body being
// read, or "" when the body may be read:
//
//   - a 1xx status: net/http returns 101 Switching Protocols as final (and
//     a user-supplied transport may return any 1xx); a webhook is not a
//     protocol upgrade, and an interim answer is no answer;
//   - a body that is also an io.Writer: the transport handed the
//     connection over, and reading it is bounded by nothing;
//   - a header over maxResponseHeaderBytes, which only a user-supplied
//     transport lets through.
func refuseResponse(resp *http.Response) string {
	code := resp.StatusCode
	switch {
	case code == http.StatusSwitchingProtocols:
		return fmt.Sprintf("convoy: status %d: protocol switch refused", code)
	case code >= 100 && code < 200:
		return fmt.Sprintf("convoy: status %d: interim response without a final one", code)
	}
	if _, ok := resp.Body.(io.Writer); ok {
		return fmt.Sprintf("convoy: status %d: connection handed over, refused", code)
	}
	if headerSize(resp.Header) > maxResponseHeaderBytes {
		return fmt.Sprintf("convoy: status %d: response header larger than %d bytes", code, maxResponseHeaderBytes)
	}
	return ""
}

// headerSize is the size of h on the wire in HTTP/1.1, near enough:
// "Name: value\r\n" per value.
func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// readBody reads a response body with readBounded and closes it. The
// attempt's deadline closes the body under the read, so a receiver that
// trickles bytes, or a user-supplied transport that ignores the request's
// context, cannot hold the worker past Timeout. On the guarded transport,
// unwrapped, the deadline ends the read already (net/http closes the
// connection when the request's context ends), so nothing is armed.
func (d *Dispatcher) readBody(ctx context.Context, body io.ReadCloser) ([]byte, bool, error) {
	if d.ownTransport {
		b, truncated, err := readBounded(body, d.cfg.MaxResponseBytes)
		body.Close()
		return b, truncated, err
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		body.Close()
	})
	b, truncated, err := readBounded(body, d.cfg.MaxResponseBytes)
	if !stop() {
		<-closed // the deadline closed it; wait for Close to return
	}
	body.Close()
	return b, truncated, err
}

// readBounded reads up to keep bytes, then drains at most
// responseDrainBytes more so the connection can be reused; truncated
// reports that the body was longer than keep.
func readBounded(r io.Reader, keep int) ([]byte, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r, int64(keep)))
	if err != nil {
		return body, false, err
	}
	n, err := io.CopyN(io.Discard, r, responseDrainBytes)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return body, n > 0, err
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// describeTransportError turns a client error into attempt text. It drops
// the URL that net/http puts in its errors: paths and queries of webhook
// URLs often carry tokens, and this text is stored and logged.
func describeTransportError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("convoy: timed out after %s: %v", timeout, err)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func hostOnly(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}
