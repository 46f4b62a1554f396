package tally

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FlakyReceiver is the endpoint of the kill -9 tests: until Healthy is
// set it fails about a quarter of the requests (500 at once, 500 after a
// while, no answer before the sender's 1 s timeout) and answers some
// successes slowly; then it accepts everything. It counts every 2xx it
// gives in Received, and every request in Requests.
type FlakyReceiver struct {
	*httptest.Server
	Received *Received
	Healthy  atomic.Bool
	Requests atomic.Int64

	mu  sync.Mutex
	rng *rand.Rand
}

// NewFlakyReceiver starts a FlakyReceiver whose faults rng draws; it is
// closed when the test ends.
func NewFlakyReceiver(t testing.TB, rng *rand.Rand) *FlakyReceiver {
	rc := &FlakyReceiver{Received: NewReceived(), rng: rng}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

// ServeHTTP answers one request.
func (rc *FlakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.Requests.Add(1)
	if rc.Healthy.Load() {
		rc.accept(w, r)
		return
	}
	rc.mu.Lock()
	p := rc.rng.Float64()
	delay := time.Duration(20+rc.rng.IntN(130)) * time.Millisecond
	rc.mu.Unlock()
	switch {
	case p < 0.20:
		w.WriteHeader(http.StatusInternalServerError)
	case p < 0.23:
		WaitFor(r, delay)
		w.WriteHeader(http.StatusInternalServerError)
	case p < 0.24:
		<-r.Context().Done() // past the sender's 1 s timeout
	case p < 0.30:
		// Slow, but well within the timeout: a 2xx the client may miss
		// only if the process dies meanwhile.
		if WaitFor(r, delay) {
			rc.accept(w, r)
		}
	default:
		rc.accept(w, r)
	}
}

// accept counts the receipt, then answers 200.
func (rc *FlakyReceiver) accept(w http.ResponseWriter, r *http.Request) {
	rc.Received.Add(r.Header)
	w.WriteHeader(http.StatusOK)
}

// WaitFor waits d, or until the client of r is gone; it reports whether
// the client is still there.
func WaitFor(r *http.Request, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
