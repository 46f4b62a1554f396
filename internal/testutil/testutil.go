// Package testutil holds helpers shared by convoy's tests: a receiver that
// reports what it saw over a channel, and a slog handler that writes to
// t.Log.
package testutil

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Request is what a Receiver saw of one request.
type Request struct {
	Header http.Header
	Body   []byte
}

// Receiver is an httptest server whose handler answers with Respond and
// reports every request on Requests (buffered; never blocks the handler
// while there is room).
type Receiver struct {
	*httptest.Server
	Requests chan Request

	mu      sync.Mutex
	respond func(n int, w http.ResponseWriter, r *http.Request)
	n       int
}

// NewReceiver starts a receiver; respond (nil: 200 OK) writes the answer
// to the n-th request (1-based). It is closed when the test ends.
func NewReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *Receiver {
	rc := &Receiver{Requests: make(chan Request, 10000), respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Server.Close)
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	r.Body = io.NopCloser(bytes.NewReader(body)) // respond may read it again
	rc.mu.Lock()
	rc.n++
	n := rc.n
	respond := rc.respond
	rc.mu.Unlock()
	select {
	case rc.Requests <- Request{Header: r.Header.Clone(), Body: body}:
	default:
	}
	if respond == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	respond(n, w, r)
}

// NewHoldingReceiver starts a receiver that holds every request until
// release is called (or the client gives up on it), then answers 200.
// release may be called more than once; the test's cleanup calls it
// before the receiver's Close, which waits for the requests it holds.
func NewHoldingReceiver(t testing.TB) (rc *Receiver, release func()) {
	let := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(let) }) }
	rc = NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-let:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(release) // registered after the server's Close: runs before it
	return rc, release
}

// Count returns how many requests the receiver has seen.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// Logger returns a logger that writes to t.Log at Debug level.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	captured.mu.Lock()
	captured.buf.Write(p)
	captured.mu.Unlock()
	return len(p), nil
}

// captured holds every log line written through Logger in this test
// binary, so a TestMain can check that no secret was ever logged.
var captured struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// CapturedLogs returns every log line written through Logger so far.
func CapturedLogs() string {
	captured.mu.Lock()
	defer captured.mu.Unlock()
	return captured.buf.String()
}

// urlCredentials matches user:password@ in a URL.
var urlCredentials = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s"]+:[^/@\s"]*@`)

// LeakedSecrets returns the log lines captured so far that contain a
// generated secret ("whsec_"), one of the extra strings, or credentials in
// a URL.
func LeakedSecrets(extra ...string) []string {
	var bad []string
	for _, line := range strings.Split(CapturedLogs(), "\n") {
		leak := strings.Contains(line, "whsec_") || urlCredentials.MatchString(line)
		for _, s := range extra {
			leak = leak || (s != "" && strings.Contains(line, s))
		}
		if leak {
			bad = append(bad, line)
		}
	}
	return bad
}
