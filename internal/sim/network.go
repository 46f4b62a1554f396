package sim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// Mode is how a simulated receiver answers.
type Mode int

// Receiver modes.
const (
	// ModeOK answers 200 after the receiver's latency.
	ModeOK Mode = iota
	// ModeFail answers 500.
	ModeFail
	// ModeGone answers 410 Gone: the endpoint dies at once.
	ModeGone
	// ModeThrottle answers 429 with a Retry-After.
	ModeThrottle
	// ModeUnavailable answers 503 with a Retry-After.
	ModeUnavailable
	// ModeRedirect answers 302, which is not followed.
	ModeRedirect
	// ModeRefuse fails at once, as a refused connection.
	ModeRefuse
	// ModeHang never answers: the attempt ends at its deadline.
	ModeHang
	// ModeSlow answers 200 at once and sends the body slowly, within the
	// attempt's timeout (parameter even) or past it (odd).
	ModeSlow
	// ModeFlaky answers 500 to a share of the requests (a quarter times
	// the parameter plus one), chosen by the seed, and 200 to the rest.
	ModeFlaky
)

var modeNames = []string{"ok", "fail", "gone", "throttle", "unavailable", "redirect", "refuse", "hang", "slow", "flaky"}

func (m Mode) String() string { return modeNames[m] }

// latencies are the receivers' answer times, by parameter.
var latencies = []time.Duration{time.Millisecond, 40 * time.Millisecond, 300 * time.Millisecond, 1500 * time.Millisecond}

// retryAfters are the Retry-After seconds of throttling receivers, by
// parameter: the last is past every MaxRetryAfter, to check the bound.
var retryAfters = []int{1, 20, 300, 7200}

// receiver is one simulated HTTP server.
type receiver struct {
	mode    Mode
	param   int
	latency time.Duration
}

// errRefused is what a refusing receiver's connection fails with.
var errRefused = errors.New("sim: connection refused")

// errCrashed is what a crashed process's store and network calls fail
// with: nothing it does after the crash reaches anything.
var errCrashed = errors.New("sim: the process crashed")

// answer is what a receiver does with one request, decided when it
// arrives.
type answer struct {
	mode       Mode
	status     int // 0: no response
	retryAfter int // seconds, sent with 429 and 503
	latency    time.Duration
	bodyTime   time.Duration // ModeSlow: how long the body takes
}

// network routes the dispatchers' requests to the receivers. It is
// shared by every dispatcher of a run; each gets a transport of its own.
type network struct {
	w         *world
	mu        sync.Mutex
	receivers []receiver
}

func newNetwork(w *world, n int) *network {
	nw := &network{w: w, receivers: make([]receiver, n)}
	for i := range nw.receivers {
		nw.receivers[i] = receiver{mode: ModeOK, latency: latencies[i%2]}
	}
	return nw
}

// set changes receiver i's mode.
func (nw *network) set(i int, m Mode, param int) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.receivers[i] = receiver{mode: m, param: param, latency: latencies[param%len(latencies)]}
}

// healAll makes every receiver answer 200 at once.
func (nw *network) healAll() {
	for i := range nw.receivers {
		nw.set(i, ModeOK, 0)
	}
}

// receiverURL is the URL of endpoint name on receiver i.
func receiverURL(i int, name string) string {
	return fmt.Sprintf("http://r%d.sim.example/hooks/%s", i, name)
}

func receiverOf(host string) int {
	h, _, _ := strings.Cut(host, ".")
	n, err := strconv.Atoi(strings.TrimPrefix(h, "r"))
	if err != nil {
		return -1
	}
	return n
}

// decide returns the answer of receiver i to attempt number of the
// delivery named dl, seen for the occurrence-th time: a function of the
// seed, the receiver's mode and the request, never of the order in which
// concurrent requests arrive.
func (nw *network) decide(i int, dl string, number, occurrence int, timeout time.Duration) answer {
	nw.mu.Lock()
	rc := receiver{mode: ModeRefuse}
	if i >= 0 && i < len(nw.receivers) {
		rc = nw.receivers[i]
	}
	nw.mu.Unlock()
	h := hash(nw.w.sc.Seed, dl, uint64(number), uint64(occurrence))
	// A few microseconds of its own, so that no two answers land at the
	// same instant, and neither on the deadline of an attempt. Every
	// instant of a run is a whole microsecond, the precision of
	// PostgreSQL's timestamps.
	own := time.Duration(1+h%997) * time.Microsecond
	a := answer{mode: rc.mode, latency: rc.latency + own}
	switch rc.mode {
	case ModeOK:
		a.status = http.StatusOK
	case ModeFail:
		a.status = http.StatusInternalServerError
	case ModeGone:
		a.status = http.StatusGone
	case ModeThrottle:
		a.status = http.StatusTooManyRequests
		a.retryAfter = retryAfters[rc.param%len(retryAfters)]
	case ModeUnavailable:
		a.status = http.StatusServiceUnavailable
		a.retryAfter = retryAfters[rc.param%len(retryAfters)]
	case ModeRedirect:
		a.status = http.StatusFound
	case ModeRefuse:
		a.latency = own
	case ModeHang:
	case ModeSlow:
		a.status = http.StatusOK
		a.latency = own
		if rc.param%2 == 0 {
			a.bodyTime = timeout * 2 / 5
		} else {
			a.bodyTime = timeout * 3 / 2
		}
	case ModeFlaky:
		a.status = http.StatusOK
		if int((h>>16)%4) <= rc.param%3 {
			a.status = http.StatusInternalServerError
		}
	}
	return a
}

func (a answer) String() string {
	switch {
	case a.mode == ModeRefuse:
		return "refused"
	case a.mode == ModeHang:
		return "hang"
	case a.mode == ModeSlow:
		return fmt.Sprintf("200 slow body %s", a.bodyTime)
	case a.retryAfter > 0:
		return fmt.Sprintf("%d retry-after %ds", a.status, a.retryAfter)
	}
	return strconv.Itoa(a.status)
}

// transport is one dispatcher's view of the network: an
// http.RoundTripper that hands each request to its receiver in memory.
// After the crash of its dispatcher it refuses everything, uncounted: a
// dead process sends nothing.
type transport struct {
	nw  *network
	inc *incarnation
}

// RoundTrip implements http.RoundTripper.
func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	if tr.inc.fenced() {
		return nil, errCrashed
	}
	ctx := req.Context()
	number, _ := strconv.Atoi(req.Header.Get(convoy.HeaderAttempt))
	led := tr.nw.w.led
	rq, a := led.requestStart(tr.inc, req.Header.Get(convoy.HeaderDeliveryID), number, receiverOf(req.URL.Host))
	// Each wake-up of the request (its answer ready, its deadline) takes
	// a ticket named after it, so that it goes in a canonical order with
	// whatever else wakes at that instant.
	wake := func(phase string) {
		if !tr.inc.fenced() {
			tr.nw.w.seq.wait(rq.ticket(phase))
		}
	}
	if a.mode == ModeHang {
		<-ctx.Done()
		wake("deadline")
		led.requestEnd(rq, false)
		return nil, ctx.Err()
	}
	t := time.NewTimer(a.latency)
	select {
	case <-t.C:
		wake("answer")
	case <-ctx.Done():
		t.Stop()
		wake("deadline")
		led.requestEnd(rq, false)
		return nil, ctx.Err()
	}
	if a.mode == ModeRefuse {
		led.requestEnd(rq, false)
		return nil, errRefused
	}
	h := make(http.Header)
	h.Set("Content-Type", "text/plain")
	if a.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(a.retryAfter))
	}
	if a.status == http.StatusFound {
		h.Set("Location", "http://elsewhere.sim.example/")
	}
	led.responded(rq, a.status, a.retryAfter)
	body := &simBody{led: led, rq: rq, wake: wake, ok: a.status >= 200 && a.status < 300,
		data: []byte("answer from " + req.URL.Host), closed: make(chan struct{})}
	if a.bodyTime > 0 {
		body.chunks = 4
		body.chunkWait = a.bodyTime / 4
	}
	return &http.Response{
		StatusCode: a.status, Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: body, ContentLength: -1, Request: req,
	}, nil
}

// simBody is a response body that tells the ledger whether the
// dispatcher read it to the end. A slow one sends its bytes in chunks,
// chunkWait apart; Close (as the attempt's deadline does) cuts it.
type simBody struct {
	led       *ledger
	rq        *request
	wake      func(phase string)
	ok        bool
	data      []byte
	chunks    int
	chunkWait time.Duration

	mu     sync.Mutex
	sent   int
	ended  bool
	closed chan struct{}
	once   sync.Once
}

func (b *simBody) Read(p []byte) (int, error) {
	if b.chunks > 0 {
		b.mu.Lock()
		more := b.sent < b.chunks
		b.mu.Unlock()
		if more {
			t := time.NewTimer(b.chunkWait)
			select {
			case <-t.C:
			case <-b.closed:
				t.Stop()
				b.wake("cut")
				return 0, errors.New("sim: body closed")
			}
			b.mu.Lock()
			b.sent++
			n := b.sent
			b.mu.Unlock()
			b.wake(fmt.Sprintf("chunk %d", n))
			if len(p) == 0 {
				return 0, nil
			}
			p[0] = '.'
			return 1, nil
		}
	}
	select {
	case <-b.closed:
		return 0, errors.New("sim: body closed")
	default:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.data) == 0 {
		if !b.ended {
			b.ended = true
			b.led.requestEnd(b.rq, b.ok)
		}
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *simBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		b.ended = true
		b.led.requestEnd(b.rq, false)
	}
	return nil
}

// hash mixes the seed with a name and numbers (FNV-1a, then a
// splitmix64 finish).
func hash(seed uint64, s string, xs ...uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	for _, x := range xs {
		h ^= x
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
