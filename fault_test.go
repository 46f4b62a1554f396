package convoy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

// Fault injection: receivers that misbehave in one way each. Every test
// drives retries with the fake clock and checks the attempts recorded (how
// many, what each saw), when each retry was due, and the final state of the
// delivery and of its endpoint.

// schedClock adapts testutil.SchedClock to convoy.Clock.
type schedClock struct{ *testutil.SchedClock }

func (c schedClock) NewTimer(d time.Duration) convoy.Timer { return c.SchedClock.NewTimer(d) }

// faultBundle is a bundle whose dispatcher runs on clk, a SchedClock, so a
// test can move time under the scheduler without racing it.
type faultBundle struct {
	*bundle
	clk *testutil.SchedClock
}

// faultSetup is setup on a memory store with a SchedClock.
func faultSetup(t *testing.T, tweak func(*convoy.Config)) *faultBundle {
	t.Helper()
	clk := testutil.NewSchedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := setup(t, memory.New(), func(c *convoy.Config) {
		c.Clock = schedClock{clk}
		if tweak != nil {
			tweak(c)
		}
	})
	return &faultBundle{bundle: b, clk: clk}
}

// advance moves the clock by d and returns once the scheduler has claimed
// at the new time and gone back to sleep.
func (b *faultBundle) advance(t *testing.T, d time.Duration) {
	t.Helper()
	// At least the poll interval, so the timer the scheduler sleeps on
	// fires whatever it was armed for.
	require.GreaterOrEqual(t, d, time.Second)
	b.clk.Advance(d)
	require.Eventually(t, b.clk.Settled, 10*time.Second, time.Millisecond, "scheduler never claimed after the clock moved")
}

// settled waits until the delivery has n attempts recorded and is not
// Processing, and returns it with its attempts.
func (b *faultBundle) settled(t *testing.T, deliveryID string, n int) (*convoy.Delivery, []*convoy.Attempt) {
	t.Helper()
	var dl *convoy.Delivery
	require.Eventually(t, func() bool {
		var err error
		dl, err = b.d.GetDelivery(context.Background(), deliveryID)
		require.NoError(t, err)
		return dl.Attempts == n && dl.Status != convoy.DeliveryProcessing
	}, 10*time.Second, time.Millisecond, "delivery never settled after %d attempts", n)
	as := b.attempts(t, deliveryID)
	require.Len(t, as, n)
	return dl, as
}

// notYet checks that the delivery is still waiting with n attempts after
// the scheduler claimed at the current time: a retry not due yet is not
// sent.
func (b *faultBundle) notYet(t *testing.T, deliveryID string, n int) {
	t.Helper()
	dl, err := b.d.GetDelivery(context.Background(), deliveryID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryRetry, dl.Status, "claimed before it was due")
	require.Equal(t, n, dl.Attempts)
}

func (b *faultBundle) ep(t *testing.T, id string) *convoy.Endpoint {
	t.Helper()
	ep, err := b.d.GetEndpoint(context.Background(), id)
	require.NoError(t, err)
	return ep
}

// requireFailed checks a failed attempt of a retried delivery: its number,
// when it started, that it failed, and that the retry is due wait later.
func requireFailed(t *testing.T, dl *convoy.Delivery, a *convoy.Attempt, number int, at time.Time, wait time.Duration) {
	t.Helper()
	require.Equal(t, number, a.Number)
	require.Equal(t, at, a.StartedAt, "attempt %d started when it was due", number)
	require.False(t, a.Success())
	require.NotEmpty(t, a.Error)
	require.Equal(t, convoy.DeliveryRetry, dl.Status)
	require.Equal(t, a.StartedAt.Add(wait), dl.NextAttemptAt, "attempt %d: retry due at attempt time + wait", number)
	require.Equal(t, a.Error, dl.LastError)
}

// requireHeaders checks that the receiver saw one delivery n times, with
// X-Convoy-Attempt counting up.
func requireHeaders(t *testing.T, reqs <-chan testutil.Request, dl *convoy.Delivery, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		var req testutil.Request
		select {
		case req = <-reqs:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d never seen", i)
		}
		require.Equal(t, dl.ID, req.Header.Get(convoy.HeaderDeliveryID))
		require.Equal(t, dl.EventID, req.Header.Get(convoy.HeaderEventID))
		require.Equal(t, strconv.Itoa(i), req.Header.Get(convoy.HeaderAttempt))
	}
}

func TestFaultFailsNTimesThenSucceeds(t *testing.T) {
	t.Parallel()
	waits := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	b := faultSetup(t, func(c *convoy.Config) {
		c.Retry = convoy.ExponentialRetry(time.Minute, 2, time.Hour, 0, 5)
	})
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(waits) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("busy"))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	ep := b.endpoint(t, rc.URL, nil)
	dl := b.deliveries(t, b.send(t, "order.paid", `{"n":1}`).ID)[0]

	at := b.clk.Now()
	for i, wait := range waits {
		got, as := b.settled(t, dl.ID, i+1)
		a := as[i]
		requireFailed(t, got, a, i+1, at, wait)
		require.Equal(t, http.StatusInternalServerError, a.StatusCode)
		require.Equal(t, "busy", string(a.ResponseBody))
		require.Equal(t, i+1, got.RoundAttempts)
		e := b.ep(t, ep.ID)
		require.Equal(t, convoy.EndpointActive, e.Status, "failures with retries left leave the endpoint active")
		require.Equal(t, i+1, e.Health.ConsecutiveFailures)
		require.Equal(t, at.Add(-sum(waits[:i])), e.Health.FailingSince)
		require.Equal(t, 500, e.Health.LastStatusCode)

		b.advance(t, wait-time.Second)
		b.notYet(t, dl.ID, i+1)
		b.advance(t, time.Second)
		at = at.Add(wait)
	}
	got, as := b.settled(t, dl.ID, len(waits)+1)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	last := as[len(waits)]
	require.True(t, last.Success())
	require.Equal(t, http.StatusAccepted, last.StatusCode)
	require.Equal(t, at, last.StartedAt)
	require.Equal(t, len(waits)+1, rc.Count())
	requireHeaders(t, rc.Requests, got, len(waits)+1)
	e := b.ep(t, ep.ID)
	require.Equal(t, convoy.EndpointActive, e.Status)
	require.Zero(t, e.Health.ConsecutiveFailures)
	require.True(t, e.Health.FailingSince.IsZero())
	require.Equal(t, at, e.Health.LastSuccessAt)
	require.Empty(t, e.Health.LastError)
}

func sum(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// hijack takes the connection of a request over from net/http.
func hijack(w http.ResponseWriter) net.Conn {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err) // the test's receivers are HTTP/1.1 servers
	}
	_ = buf.Flush()
	return conn
}

// reset closes a connection with an RST instead of a FIN.
func reset(conn net.Conn) {
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}

func TestFaultConnectionResetMidResponse(t *testing.T) {
	t.Parallel()
	b := faultSetup(t, func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 5) })
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1: // status and half the body, then RST
			conn := hijack(w)
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\nhalf a bo"))
			reset(conn)
		case 2: // RST before a byte of the answer
			reset(hijack(w))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	ep := b.endpoint(t, rc.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

	at := b.clk.Now()
	for i := 1; i <= 2; i++ {
		got, as := b.settled(t, dl.ID, i)
		a := as[i-1]
		requireFailed(t, got, a, i, at, time.Minute)
		// A 200 whose body was cut is not a success. Whether the status
		// line was read before the RST arrived is up to the network.
		require.Contains(t, []int{0, http.StatusOK}, a.StatusCode)
		require.Equal(t, i, b.ep(t, ep.ID).Health.ConsecutiveFailures)
		b.advance(t, time.Minute)
		at = at.Add(time.Minute)
	}
	got, as := b.settled(t, dl.ID, 3)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	require.Equal(t, at, as[2].StartedAt)
	require.Equal(t, 3, rc.Count())
	requireHeaders(t, rc.Requests, got, 3)
	require.Zero(t, b.ep(t, ep.ID).Health.ConsecutiveFailures)
}

// holdListener holds the first hold connections it accepts, never reading
// or writing them: the peer sees a connection that accepts its request and
// never answers. Later connections go to the server.
type holdListener struct {
	net.Listener
	hold int

	mu   sync.Mutex
	held []net.Conn
}

func (l *holdListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.held) < l.hold {
			l.held = append(l.held, c)
			l.mu.Unlock()
			continue
		}
		l.mu.Unlock()
		return c, nil
	}
}

func (l *holdListener) heldConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

func (l *holdListener) closeHeld() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.held {
		_ = c.Close()
	}
}

func TestFaultAcceptsAndNeverAnswers(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	b := faultSetup(t, func(c *convoy.Config) {
		c.Timeout = timeout
		c.Retry = convoy.LinearRetry(time.Minute, 5)
	})
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	hl := &holdListener{Listener: srv.Listener, hold: 2}
	srv.Listener = hl
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(hl.closeHeld)
	ep := b.endpoint(t, srv.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

	at := b.clk.Now()
	for i := 1; i <= 2; i++ {
		got, as := b.settled(t, dl.ID, i)
		a := as[i-1]
		requireFailed(t, got, a, i, at, time.Minute)
		require.Zero(t, a.StatusCode, "no answer")
		// It waited for the timeout, which starts a moment before the
		// request does.
		require.GreaterOrEqual(t, a.Duration, timeout/2, "the attempt waited for the timeout")
		require.Equal(t, "127.0.0.1", a.RemoteIP, "the connection was made")
		require.Equal(t, i, hl.heldConns())
		require.Zero(t, served.Load())
		b.advance(t, time.Minute)
		at = at.Add(time.Minute)
	}
	got, as := b.settled(t, dl.ID, 3)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	require.Equal(t, at, as[2].StartedAt)
	require.Equal(t, int64(1), served.Load())
	require.Equal(t, convoy.EndpointActive, b.ep(t, ep.ID).Status)
}

func TestFaultAnswersAfterTheTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	b := faultSetup(t, func(c *convoy.Config) {
		c.Timeout = timeout
		c.Retry = convoy.LinearRetry(time.Minute, 5)
	})
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			// The receiver got the request and will accept it, but only
			// after the dispatcher gave up waiting.
			<-r.Context().Done()
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := b.endpoint(t, rc.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

	at := b.clk.Now()
	for i := 1; i <= 2; i++ {
		got, as := b.settled(t, dl.ID, i)
		a := as[i-1]
		requireFailed(t, got, a, i, at, time.Minute)
		require.Zero(t, a.StatusCode)
		require.GreaterOrEqual(t, a.Duration, timeout/2, "the attempt waited for the timeout")
		b.advance(t, time.Minute)
		at = at.Add(time.Minute)
	}
	got, as := b.settled(t, dl.ID, 3)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	require.Equal(t, at, as[2].StartedAt)
	// At least once: the receiver saw the delivery three times, one per
	// attempt, and deduplicates it by its ID.
	require.Equal(t, 3, rc.Count())
	requireHeaders(t, rc.Requests, got, 3)
	require.Equal(t, convoy.EndpointActive, b.ep(t, ep.ID).Status)
}

func TestFaultMalformedHTTP(t *testing.T) {
	t.Parallel()
	garbage := []string{
		"garbage\r\n\r\n",                                            // no status line
		"HTTP/1.1 abc OK\r\n\r\n",                                    // status not a number
		"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nok",          // bad header value
		"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n", // header without a colon
	}
	b := faultSetup(t, func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, len(garbage)) })
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(garbage) {
			conn := hijack(w)
			_, _ = conn.Write([]byte(garbage[n-1]))
			_ = conn.Close()
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := b.endpoint(t, rc.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

	at := b.clk.Now()
	for i := 1; i <= len(garbage); i++ {
		got, as := b.settled(t, dl.ID, i)
		a := as[i-1]
		requireFailed(t, got, a, i, at, time.Minute)
		require.Zero(t, a.StatusCode, "%q is not a response", garbage[i-1])
		require.Equal(t, i, b.ep(t, ep.ID).Health.ConsecutiveFailures)
		b.advance(t, time.Minute)
		at = at.Add(time.Minute)
	}
	got, as := b.settled(t, dl.ID, len(garbage)+1)
	require.Equal(t, convoy.DeliverySuccess, got.Status, "the last retry of the round succeeds")
	require.Equal(t, at, as[len(garbage)].StartedAt)
	require.Equal(t, len(garbage)+1, rc.Count())
	require.Equal(t, convoy.EndpointActive, b.ep(t, ep.ID).Status)
}

func TestFaultRedirectIsNeverFollowed(t *testing.T) {
	t.Parallel()
	for _, code := range []int{
		http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect,
	} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var changes []convoy.EndpointStatusEvent
			b := faultSetup(t, func(c *convoy.Config) {
				c.Retry = convoy.LinearRetry(time.Minute, 2)
				c.OnEndpointStatus = func(e convoy.EndpointStatusEvent) {
					mu.Lock()
					changes = append(changes, e)
					mu.Unlock()
				}
			})
			target := testutil.NewReceiver(t, nil)
			rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/moved", code)
			})
			ep := b.endpoint(t, rc.URL, nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

			at := b.clk.Now()
			for i := 1; i <= 2; i++ {
				got, as := b.settled(t, dl.ID, i)
				requireFailed(t, got, as[i-1], i, at, time.Minute)
				require.Equal(t, code, as[i-1].StatusCode)
				require.Equal(t, target.URL+"/moved", as[i-1].ResponseHeaders.Get("Location"))
				b.advance(t, time.Minute)
				at = at.Add(time.Minute)
			}
			// Two retries, three redirects: the delivery is exhausted and,
			// by the default policy, the endpoint is dead.
			got, as := b.settled(t, dl.ID, 3)
			require.Equal(t, convoy.DeliveryFailure, got.Status)
			require.Equal(t, code, as[2].StatusCode)
			require.Equal(t, at, as[2].StartedAt)
			require.Equal(t, 3, rc.Count())
			require.Zero(t, target.Count(), "the redirect was followed")
			e := b.ep(t, ep.ID)
			require.Equal(t, convoy.EndpointInactive, e.Status)
			require.Equal(t, 3, e.Health.ConsecutiveFailures)
			require.Equal(t, 1, e.Health.ConsecutiveFailedDeliveries)
			require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) == 1 }, 10*time.Second, time.Millisecond)
			mu.Lock()
			require.Equal(t, convoy.EndpointStatusEvent{
				EndpointID: ep.ID, AppID: b.app.ID, From: convoy.EndpointActive, To: convoy.EndpointInactive,
				Reason: convoy.ReasonFailing, At: at,
			}, changes[0])
			mu.Unlock()

			// Later events are kept, not sent.
			later := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
			require.Equal(t, convoy.DeliveryDiscarded, later.Status)
			require.Equal(t, 3, rc.Count())
		})
	}
}

func TestFaultRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("429 and 503 push the retry, within bounds", func(t *testing.T) {
		t.Parallel()
		var b *faultBundle
		// Each answer, and the wait it must cause with a 1 min linear
		// policy and MaxRetryAfter 1 h.
		steps := []struct {
			status int
			after  func(now time.Time) string
			wait   time.Duration
		}{
			{http.StatusTooManyRequests, func(time.Time) string { return "600" }, 10 * time.Minute},
			{http.StatusTooManyRequests, func(time.Time) string { return "5" }, time.Minute},                                                           // shorter than the policy: the policy wins
			{http.StatusServiceUnavailable, func(now time.Time) string { return now.Add(30 * time.Minute).Format(http.TimeFormat) }, 30 * time.Minute}, // an HTTP date
			{http.StatusTooManyRequests, func(time.Time) string { return "7200" }, time.Hour},                                                          // capped at MaxRetryAfter
			{http.StatusTooManyRequests, func(time.Time) string { return "soon" }, time.Minute},                                                        // unreadable: the policy
			{http.StatusInternalServerError, func(time.Time) string { return "600" }, time.Minute},                                                     // only 429 and 503 count
		}
		b = faultSetup(t, func(c *convoy.Config) {
			c.Retry = convoy.LinearRetry(time.Minute, len(steps))
			c.MaxRetryAfter = time.Hour
		})
		rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= len(steps) {
				w.Header().Set("Retry-After", steps[n-1].after(b.clk.Now()))
				w.WriteHeader(steps[n-1].status)
			}
		})
		ep := b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

		at := b.clk.Now()
		for i, s := range steps {
			got, as := b.settled(t, dl.ID, i+1)
			requireFailed(t, got, as[i], i+1, at, s.wait)
			require.Equal(t, s.status, as[i].StatusCode)
			if s.wait > time.Minute {
				b.advance(t, s.wait-time.Second)
				b.notYet(t, dl.ID, i+1)
				b.advance(t, time.Second)
			} else {
				b.advance(t, s.wait)
			}
			at = at.Add(s.wait)
		}
		got, as := b.settled(t, dl.ID, len(steps)+1)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
		require.Equal(t, at, as[len(steps)].StartedAt)
		require.Equal(t, len(steps)+1, rc.Count())
		require.Equal(t, convoy.EndpointActive, b.ep(t, ep.ID).Status)
	})
	t.Run("Retry-After never brings a retry forward", func(t *testing.T) {
		t.Parallel()
		// The policy waits 2 h; the receiver asks for 3 h, over the 1 h
		// bound. The bound limits how far the header pushes the retry: it
		// must not pull it before the policy's own time.
		b := faultSetup(t, func(c *convoy.Config) {
			c.Retry = convoy.LinearRetry(2*time.Hour, 1)
			c.MaxRetryAfter = time.Hour
		})
		rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "10800")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		at := b.clk.Now()
		got, as := b.settled(t, dl.ID, 1)
		requireFailed(t, got, as[0], 1, at, 2*time.Hour)
		b.advance(t, time.Hour)
		b.notYet(t, dl.ID, 1)
		b.advance(t, time.Hour)
		got, _ = b.settled(t, dl.ID, 2)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
	})
	t.Run("429 until retries run out", func(t *testing.T) {
		t.Parallel()
		b := faultSetup(t, func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 1) })
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		ep := b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		at := b.clk.Now()
		got, as := b.settled(t, dl.ID, 1)
		requireFailed(t, got, as[0], 1, at, 2*time.Minute)
		b.advance(t, 2*time.Minute)
		got, as = b.settled(t, dl.ID, 2)
		require.Equal(t, convoy.DeliveryFailure, got.Status)
		require.Equal(t, at.Add(2*time.Minute), as[1].StartedAt)
		require.Equal(t, http.StatusTooManyRequests, as[1].StatusCode)
		require.Equal(t, convoy.EndpointInactive, b.ep(t, ep.ID).Status, "an exhausted delivery kills the endpoint, throttled or not")
	})
}

func TestFaultGoneKillsTheEndpointAtOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changes []convoy.EndpointStatusEvent
	b := faultSetup(t, func(c *convoy.Config) {
		c.Retry = convoy.LinearRetry(time.Minute, 5)
		c.OnEndpointStatus = func(e convoy.EndpointStatusEvent) {
			mu.Lock()
			changes = append(changes, e)
			mu.Unlock()
		}
	})
	var healthy atomic.Bool
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		var body struct{ Kind string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch {
		case body.Kind == "gone":
			w.WriteHeader(http.StatusGone)
		case !healthy.Load():
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep := b.endpoint(t, rc.URL, nil)
	ctx := context.Background()

	// A delivery waiting for its retry when the endpoint goes.
	flaky := b.deliveries(t, b.send(t, "x", `{"Kind":"flaky"}`).ID)[0]
	got, as := b.settled(t, flaky.ID, 1)
	requireFailed(t, got, as[0], 1, b.clk.Now(), time.Minute)

	// 410: Failure on the first attempt although five retries are left,
	// and the endpoint is inactive in the same transaction.
	gone := b.deliveries(t, b.send(t, "x", `{"Kind":"gone"}`).ID)[0]
	got, as = b.settled(t, gone.ID, 1)
	require.Equal(t, convoy.DeliveryFailure, got.Status)
	require.Equal(t, http.StatusGone, as[0].StatusCode)
	e := b.ep(t, ep.ID)
	require.Equal(t, convoy.EndpointInactive, e.Status)
	require.Equal(t, 2, e.Health.ConsecutiveFailures)
	require.Equal(t, 1, e.Health.ConsecutiveFailedDeliveries)
	require.Equal(t, http.StatusGone, e.Health.LastStatusCode)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) == 1 }, 10*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, convoy.ReasonGone, changes[0].Reason)
	require.Equal(t, convoy.EndpointInactive, changes[0].To)
	mu.Unlock()

	// The waiting retry comes due and is discarded without a request; a
	// new event is discarded at Send.
	b.advance(t, time.Minute)
	require.Eventually(t, func() bool {
		dl, err := b.d.GetDelivery(ctx, flaky.ID)
		require.NoError(t, err)
		return dl.Status == convoy.DeliveryDiscarded
	}, 10*time.Second, time.Millisecond)
	later := b.deliveries(t, b.send(t, "x", `{"Kind":"later"}`).ID)[0]
	require.Equal(t, convoy.DeliveryDiscarded, later.Status)
	require.Equal(t, 2, rc.Count())
	got, as = b.settled(t, flaky.ID, 1)
	require.Len(t, as, 1, "a discarded retry makes no attempt")
	require.Equal(t, convoy.DeliveryDiscarded, got.Status)

	// Back up: re-activated by hand, the discarded deliveries are re-sent
	// and arrive; the 410 delivery stays Failure.
	healthy.Store(true)
	_, err := b.d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointActive)
	require.NoError(t, err)
	n, err := b.d.ResendEndpoint(ctx, ep.ID, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got, _ = b.settled(t, flaky.ID, 2)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	got, _ = b.settled(t, later.ID, 1)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	got, _ = b.settled(t, gone.ID, 1)
	require.Equal(t, convoy.DeliveryFailure, got.Status)
	require.Equal(t, 4, rc.Count())
}

func TestFaultConnectionRefusedThenBack(t *testing.T) {
	t.Parallel()
	b := faultSetup(t, func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 5) })
	var served atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(handler)
	addr := srv.Listener.Addr().String()
	ep := b.endpoint(t, srv.URL, nil)

	first := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	got, _ := b.settled(t, first.ID, 1)
	require.Equal(t, convoy.DeliverySuccess, got.Status)

	// The receiver goes away entirely: nothing listens on its port.
	srv.Close()
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	at := b.clk.Now()
	for i := 1; i <= 3; i++ {
		got, as := b.settled(t, dl.ID, i)
		a := as[i-1]
		requireFailed(t, got, a, i, at, time.Minute)
		require.Zero(t, a.StatusCode)
		require.Equal(t, i, b.ep(t, ep.ID).Health.ConsecutiveFailures)
		if i < 3 {
			b.advance(t, time.Minute)
			at = at.Add(time.Minute)
		}
	}
	require.Equal(t, int64(1), served.Load())
	require.Equal(t, convoy.EndpointActive, b.ep(t, ep.ID).Status)

	// It comes back on the same address; the next retry gets through.
	back := httptest.NewUnstartedServer(handler)
	require.NoError(t, back.Listener.Close())
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	back.Listener = ln
	back.Start()
	t.Cleanup(back.Close)
	b.advance(t, time.Minute)
	at = at.Add(time.Minute)
	got, as := b.settled(t, dl.ID, 4)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	require.Equal(t, at, as[3].StartedAt)
	require.Equal(t, int64(2), served.Load())
	e := b.ep(t, ep.ID)
	require.Equal(t, convoy.EndpointActive, e.Status)
	require.Zero(t, e.Health.ConsecutiveFailures)
	require.Equal(t, at, e.Health.LastSuccessAt)
}
