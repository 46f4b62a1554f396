package convoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// TestMain checks, after every test ran, that no goroutine leaked and that
// no secret or URL credential appeared in any log line of the whole suite.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
		if bad := testutil.LeakedSecrets(testSecrets...); len(bad) > 0 {
			fmt.Fprintf(os.Stderr, "secrets in logs:\n%s\n", strings.Join(bad, "\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// testSecrets are the secrets tests set by hand; no log line may show them.
var testSecrets = []string{"hand-set-secret-0123456789", "s3cr3t-passw0rd"}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// storeKinds lists the stores tests run against where the store matters.
var storeKinds = []struct {
	name string
	open func(t *testing.T) convoy.Store
}{
	{"memory", func(t *testing.T) convoy.Store { return memory.New() }},
	{"bolt", func(t *testing.T) convoy.Store {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "convoy.db"), nil)
		require.NoError(t, err)
		return st
	}},
}

type bundle struct {
	d     *convoy.Dispatcher
	store convoy.Store
	clock *convoytest.Clock
	app   *convoy.App
}

// setup starts a dispatcher with a fake clock on st and registers one app.
// tweak may change the config before New.
func setup(t *testing.T, st convoy.Store, tweak func(*convoy.Config)) *bundle {
	t.Helper()
	clk := convoytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := convoy.Config{
		Store:         st,
		Workers:       8,
		Timeout:       5 * time.Second,
		Retry:         convoy.LinearRetry(time.Minute, 3),
		Logger:        testutil.Logger(t),
		AllowNetworks: loopback,
		Clock:         clk,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := convoy.New(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
		require.NoError(t, st.Close())
	})
	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme", SupportEmail: "ops@acme.test"})
	require.NoError(t, err)
	return &bundle{d: d, store: st, clock: clk, app: app}
}

func (b *bundle) endpoint(t *testing.T, url string, tweak func(*convoy.Endpoint)) *convoy.Endpoint {
	t.Helper()
	ep := convoy.Endpoint{URL: url}
	if tweak != nil {
		tweak(&ep)
	}
	got, err := b.d.AddEndpoint(context.Background(), b.app.ID, ep)
	require.NoError(t, err)
	return got
}

func (b *bundle) send(t *testing.T, typ string, data string) *convoy.Event {
	t.Helper()
	return b.sendResult(t, typ, data).Event
}

// sendResult sends an event to the bundle's app and returns what Send
// returned.
func (b *bundle) sendResult(t *testing.T, typ string, data string) *convoy.SendResult {
	t.Helper()
	res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: typ, Data: json.RawMessage(data)})
	require.NoError(t, err)
	return res
}

// waitStatus polls until the delivery reaches status.
func (b *bundle) waitStatus(t *testing.T, deliveryID string, status convoy.DeliveryStatus) *convoy.Delivery {
	t.Helper()
	var last *convoy.Delivery
	require.Eventually(t, func() bool {
		dl, err := b.d.GetDelivery(context.Background(), deliveryID)
		require.NoError(t, err)
		last = dl
		return dl.Status == status
	}, 10*time.Second, 5*time.Millisecond, "delivery never reached %s", status)
	return last
}

func (b *bundle) deliveries(t *testing.T, eventID string) []*convoy.Delivery {
	t.Helper()
	_, ds, err := b.d.GetEvent(context.Background(), eventID)
	require.NoError(t, err)
	return ds
}

// attempts returns a delivery's attempts, oldest first (ListAttempts
// lists newest first).
func (b *bundle) attempts(t *testing.T, deliveryID string) []*convoy.Attempt {
	t.Helper()
	as, _, err := b.d.ListAttempts(context.Background(), deliveryID, convoy.Page{})
	require.NoError(t, err)
	slices.Reverse(as)
	return as
}

func TestSendReachesEveryEndpointSignedWithHeaders(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			r1 := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Receiver", "one")
				_, _ = w.Write([]byte(`{"ok":true}`))
			})
			r2 := testutil.NewReceiver(t, nil)
			ep1 := b.endpoint(t, r1.URL+"/hooks", func(e *convoy.Endpoint) { e.Headers = map[string]string{"X-Tenant": "acme"} })
			b.endpoint(t, r2.URL, nil)
			data := `{"invoice": 42,  "total": "9.99"}`
			res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(data), IdempotencyKey: "inv-42"})
			require.NoError(t, err)
			ev := res.Event

			verifier := &convoy.Verifier{Secrets: []convoy.SecretValue{b.app.Secrets[0].Value}, Now: b.clock.Now}
			for _, rc := range []*testutil.Receiver{r1, r2} {
				req := <-rc.Requests
				require.Equal(t, data, string(req.Body), "body is sent byte for byte")
				require.Equal(t, "application/json", req.Header.Get("Content-Type"))
				require.Equal(t, convoy.UserAgent, req.Header.Get("User-Agent"))
				require.Equal(t, ev.ID, req.Header.Get(convoy.HeaderEventID))
				require.NotEmpty(t, req.Header.Get(convoy.HeaderDeliveryID))
				require.Equal(t, "invoice.paid", req.Header.Get(convoy.HeaderEventType))
				require.Equal(t, "1", req.Header.Get(convoy.HeaderAttempt))
				require.Equal(t, "inv-42", req.Header.Get(convoy.HeaderIdempotencyKey))
				require.NoError(t, verifier.Verify(req.Header, req.Body))
			}

			ds := b.deliveries(t, ev.ID)
			require.Len(t, ds, 2)
			for _, dl := range ds {
				b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
				as := b.attempts(t, dl.ID)
				require.Len(t, as, 1)
				a := as[0]
				require.Equal(t, 200, a.StatusCode)
				require.Equal(t, http.MethodPost, a.Method)
				require.Equal(t, data, string(a.RequestBody))
				require.NotEmpty(t, a.RequestHeaders.Get(convoy.DefaultSignatureHeader))
				require.Equal(t, "127.0.0.1", a.RemoteIP)
				require.Empty(t, a.Error)
				if dl.EndpointID == ep1.ID {
					require.Equal(t, "acme", a.RequestHeaders.Get("X-Tenant"))
					require.Equal(t, "one", a.ResponseHeaders.Get("X-Receiver"))
					require.Equal(t, `{"ok":true}`, string(a.ResponseBody))
				}
			}
		})
	}
}

func TestFailsTwiceThenSucceeds(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= 2 {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			b.endpoint(t, rc.URL, nil)
			ev := b.send(t, "user.created", `{"id":1}`)
			dl := b.deliveries(t, ev.ID)[0]

			sent := b.clock.Now()
			for i := 1; i <= 2; i++ {
				require.Eventually(t, func() bool { return len(b.attempts(t, dl.ID)) == i }, 10*time.Second, 5*time.Millisecond)
				got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
				require.Equal(t, i, got.Attempts)
				require.Equal(t, b.clock.Now().Add(time.Minute), got.NextAttemptAt, "linear retry one minute later")
				b.clock.Advance(time.Minute)
			}
			got := b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
			require.Equal(t, 3, got.Attempts)
			as := b.attempts(t, dl.ID)
			require.Len(t, as, 3)
			for i, a := range as {
				require.Equal(t, i+1, a.Number)
				require.Equal(t, sent.Add(time.Duration(i)*time.Minute), a.StartedAt)
			}
			require.Equal(t, 500, as[0].StatusCode)
			require.NotEmpty(t, as[0].Error)
			require.Equal(t, 204, as[2].StatusCode)
			require.Equal(t, 3, rc.Count())
		})
	}
}

func TestDeadEndpointDiscardsThenResendDeliversAll(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			var mu sync.Mutex
			healthy := false
			var statusEvents []convoy.EndpointStatusEvent
			b := setup(t, sk.open(t), func(c *convoy.Config) {
				c.Retry = convoy.LinearRetry(time.Minute, 2)
				c.OnEndpointStatus = func(e convoy.EndpointStatusEvent) {
					mu.Lock()
					statusEvents = append(statusEvents, e)
					mu.Unlock()
				}
			})
			rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				ok := healthy
				mu.Unlock()
				if !ok {
					w.WriteHeader(http.StatusBadGateway)
				}
			})
			ep := b.endpoint(t, rc.URL, nil)
			ctx := context.Background()

			first := b.deliveries(t, b.send(t, "a.b", `1`).ID)[0]
			b.waitStatus(t, first.ID, convoy.DeliveryRetry)
			b.clock.Advance(time.Minute)
			require.Eventually(t, func() bool { return len(b.attempts(t, first.ID)) == 2 }, 10*time.Second, 5*time.Millisecond)
			b.clock.Advance(time.Minute)
			got := b.waitStatus(t, first.ID, convoy.DeliveryFailure)
			require.Equal(t, 3, got.Attempts, "first attempt plus two retries")
			require.Eventually(t, func() bool {
				e, err := b.d.GetEndpoint(ctx, ep.ID)
				require.NoError(t, err)
				return e.Status == convoy.EndpointInactive
			}, 10*time.Second, 5*time.Millisecond)
			requests := rc.Count()

			// Later events are kept as Discarded, and nothing is sent.
			var later []string
			for i := range 3 {
				ev := b.send(t, "a.b", strconv.Itoa(i))
				dl := b.deliveries(t, ev.ID)[0]
				require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
				later = append(later, dl.ID)
			}
			require.Equal(t, requests, rc.Count())

			// Re-activate by hand, re-send: every discarded event arrives.
			mu.Lock()
			healthy = true
			mu.Unlock()
			_, err := b.d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointActive)
			require.NoError(t, err)
			n, err := b.d.ResendEndpoint(ctx, ep.ID, nil)
			require.NoError(t, err)
			require.Equal(t, 3, n)
			for _, id := range later {
				b.waitStatus(t, id, convoy.DeliverySuccess)
			}
			require.NoError(t, b.d.Resend(ctx, first.ID))
			got = b.waitStatus(t, first.ID, convoy.DeliverySuccess)
			require.Equal(t, 4, got.Attempts)

			mu.Lock()
			defer mu.Unlock()
			require.GreaterOrEqual(t, len(statusEvents), 2)
			require.Equal(t, convoy.EndpointInactive, statusEvents[0].To)
			require.Equal(t, convoy.ReasonFailing, statusEvents[0].Reason)
			require.Equal(t, convoy.EndpointActive, statusEvents[1].To)
			require.Equal(t, convoy.ReasonManual, statusEvents[1].Reason)
		})
	}
}

func TestResendToDeadEndpointPutsItOnProbation(t *testing.T) {
	b := setup(t, memory.New(), func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 0) })
	var mu sync.Mutex
	fail := true
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep := b.endpoint(t, rc.URL, nil)
	ctx := context.Background()
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	b.waitStatus(t, dl.ID, convoy.DeliveryFailure)
	status := func() convoy.EndpointStatus {
		e, err := b.d.GetEndpoint(ctx, ep.ID)
		require.NoError(t, err)
		return e.Status
	}
	require.Eventually(t, func() bool { return status() == convoy.EndpointInactive }, 10*time.Second, 5*time.Millisecond)

	// Re-sending while it still fails: pending, then inactive again.
	require.NoError(t, b.d.Resend(ctx, dl.ID))
	require.Contains(t, []convoy.EndpointStatus{convoy.EndpointPending, convoy.EndpointInactive}, status())
	b.waitStatus(t, dl.ID, convoy.DeliveryFailure)
	require.Eventually(t, func() bool { return status() == convoy.EndpointInactive }, 10*time.Second, 5*time.Millisecond)

	// Re-sending once it works: pending, then active.
	mu.Lock()
	fail = false
	mu.Unlock()
	require.NoError(t, b.d.Resend(ctx, dl.ID))
	b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
	require.Eventually(t, func() bool { return status() == convoy.EndpointActive }, 10*time.Second, 5*time.Millisecond)
}

func TestInactiveEndpointAtSendIsDiscardedWithoutRequest(t *testing.T) {
	b := setup(t, memory.New(), nil)
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, func(e *convoy.Endpoint) { e.Status = convoy.EndpointInactive })
	live := testutil.NewReceiver(t, nil)
	b.endpoint(t, live.URL, nil)
	ev := b.send(t, "x", `{}`)
	<-live.Requests
	var statuses []convoy.DeliveryStatus
	for _, dl := range b.deliveries(t, ev.ID) {
		statuses = append(statuses, dl.Status)
	}
	require.Contains(t, statuses, convoy.DeliveryDiscarded)
	require.Equal(t, 0, rc.Count())
}

func TestEventTypeFilter(t *testing.T) {
	b := setup(t, memory.New(), nil)
	all := testutil.NewReceiver(t, nil)
	paid := testutil.NewReceiver(t, nil)
	b.endpoint(t, all.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"*"} })
	b.endpoint(t, paid.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"invoice.paid"} })
	require.Len(t, b.deliveries(t, b.send(t, "invoice.created", `{}`).ID), 1)
	require.Len(t, b.deliveries(t, b.send(t, "invoice.paid", `{}`).ID), 2)
}

func TestIdempotencyKeySendsOnce(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			rc := testutil.NewReceiver(t, nil)
			b.endpoint(t, rc.URL, nil)
			ctx := context.Background()
			res1, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`1`), IdempotencyKey: "k"})
			require.NoError(t, err)
			require.False(t, res1.Duplicate)
			require.Len(t, res1.Deliveries, 1)
			res2, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`2`), IdempotencyKey: "k"})
			require.NoError(t, err)
			require.True(t, res2.Duplicate, "the repeat is reported as ignored")
			first, again := res1.Event, res2.Event
			require.Equal(t, first.ID, again.ID)
			require.Equal(t, `1`, string(again.Data))
			require.Len(t, res2.Deliveries, 1)
			require.Equal(t, res1.Deliveries[0].ID, res2.Deliveries[0].ID, "the repeat returns the first event's deliveries")
			b.waitStatus(t, b.deliveries(t, first.ID)[0].ID, convoy.DeliverySuccess)
			require.Equal(t, 1, rc.Count())
		})
	}
}

func TestResponsesAndTransportFailures(t *testing.T) {
	t.Parallel()
	t.Run("redirect is not followed", func(t *testing.T) {
		t.Parallel()
		target := testutil.NewReceiver(t, nil)
		b := setup(t, memory.New(), nil)
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusFound)
		})
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
		a := b.attempts(t, got.ID)[0]
		require.Equal(t, http.StatusFound, a.StatusCode)
		require.Contains(t, a.Error, "redirect")
		require.Equal(t, 0, target.Count())
	})
	t.Run("410 makes the endpoint inactive at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, memory.New(), nil)
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
		ep := b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		b.waitStatus(t, dl.ID, convoy.DeliveryFailure)
		require.Eventually(t, func() bool {
			e, err := b.d.GetEndpoint(context.Background(), ep.ID)
			require.NoError(t, err)
			return e.Status == convoy.EndpointInactive
		}, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, 1, rc.Count())
	})
	t.Run("429 Retry-After is honoured", func(t *testing.T) {
		t.Parallel()
		b := setup(t, memory.New(), nil)
		rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "600")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
		require.Equal(t, b.clock.Now().Add(10*time.Minute), got.NextAttemptAt, "waits Retry-After, not the 1 min policy")
		b.clock.Advance(time.Minute)
		// Not due yet: the scheduler must not send before Retry-After.
		b.clock.Advance(9*time.Minute - time.Second)
		require.Equal(t, 1, rc.Count())
		b.clock.Advance(time.Second)
		b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		require.Equal(t, 2, rc.Count())
	})
	t.Run("503 Retry-After is bounded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, memory.New(), func(c *convoy.Config) { c.MaxRetryAfter = 5 * time.Minute })
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
		require.Equal(t, b.clock.Now().Add(5*time.Minute), got.NextAttemptAt)
	})
	t.Run("timeout is a failed attempt", func(t *testing.T) {
		t.Parallel()
		b := setup(t, memory.New(), func(c *convoy.Config) { c.Timeout = 200 * time.Millisecond })
		rc, _ := testutil.NewHoldingReceiver(t)
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
		a := b.attempts(t, got.ID)[0]
		require.Equal(t, 0, a.StatusCode)
		require.Contains(t, a.Error, "timed out")
		require.Less(t, a.Duration, 5*time.Second)
	})
	t.Run("connection refused is retried", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		b := setup(t, memory.New(), nil)
		b.endpoint(t, "http://"+addr+"/", nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
		a := b.attempts(t, got.ID)[0]
		require.Contains(t, a.Error, "refused")
	})
	t.Run("10 MiB response is truncated", func(t *testing.T) {
		t.Parallel()
		b := setup(t, memory.New(), func(c *convoy.Config) { c.MaxResponseBytes = 1024 })
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = 'a'
		}
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			for range 10 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		got := b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		a := b.attempts(t, got.ID)[0]
		require.Len(t, a.ResponseBody, 1024)
		require.True(t, a.ResponseTruncated)
	})
}

func TestSendRejectsBadInput(t *testing.T) {
	b := setup(t, memory.New(), nil)
	ctx := context.Background()
	cases := []struct {
		name string
		app  string
		ev   convoy.Event
		want error
	}{
		{"bad JSON", b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{`)}, convoy.ErrInvalidJSON},
		{"empty data", b.app.ID, convoy.Event{Type: "x"}, convoy.ErrInvalidJSON},
		{"bad type", b.app.ID, convoy.Event{Type: "a b", Data: json.RawMessage(`1`)}, convoy.ErrInvalidEventType},
		{"too large", b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`"` + string(make([]byte, 2<<20)) + `"`)}, convoy.ErrPayloadTooLarge},
		{"malformed app ID", "nope", convoy.Event{Type: "x", Data: json.RawMessage(`1`)}, convoy.ErrInvalidID},
		{"unknown app", convoy.NewID(), convoy.Event{Type: "x", Data: json.RawMessage(`1`)}, convoy.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.d.Send(ctx, c.app, c.ev)
			require.ErrorIs(t, err, c.want)
		})
	}
}

// TestIsolation: an endpoint that hangs holds at most PerEndpoint workers,
// so a healthy endpoint still gets its full share at once: its receiver
// sees PerEndpoint requests in flight together while the hanging one
// holds the others. (BenchmarkIsolation measures the throughput ratio.)
func TestIsolation(t *testing.T) {
	const share = 4
	// Attempts time out in real time: a Timeout shorter than a slow run
	// would end the hanging attempts and free their workers for the
	// endpoint's next events. The test lets them go at its end instead.
	b := setup(t, memory.New(), func(c *convoy.Config) {
		c.Workers, c.PerEndpoint, c.Timeout = 2*share, share, 10*time.Minute
	})
	hang, _ := testutil.NewHoldingReceiver(t)
	b.endpoint(t, hang.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"slow"} })
	for range 20 {
		b.send(t, "slow", `{}`)
	}
	require.Eventually(t, func() bool { return hang.Count() == share }, 10*time.Second, time.Millisecond, "the hanging endpoint holds its share")

	// The healthy receiver answers only once share requests are in flight
	// together: it can, only if the hanging endpoint left it share workers.
	var mu sync.Mutex
	inFlight, peak, allIn := 0, 0, false
	all := make(chan struct{})
	healthy := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		if inFlight > peak {
			peak = inFlight
		}
		if inFlight == share && !allIn {
			// Once: after the first requests answer, later ones may
			// bring inFlight back to share.
			allIn = true
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-r.Context().Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	hep := b.endpoint(t, healthy.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"fast"} })
	for i := range 3 * share {
		b.send(t, "fast", strconv.Itoa(i))
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("the healthy endpoint never had its share of workers in flight")
	}
	require.Eventually(t, func() bool {
		ds, _, err := b.d.ListDeliveries(context.Background(), convoy.DeliveryQuery{EndpointID: hep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliverySuccess}}, convoy.Page{})
		require.NoError(t, err)
		return len(ds) == 3*share
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, share, peak, "never more than PerEndpoint in flight to one endpoint")
	require.Equal(t, share, hang.Count(), "the hanging endpoint got no more workers")
}

// BenchmarkIsolation measures a healthy endpoint's delivery rate alone and
// beside an endpoint that hangs until the timeout, and reports the ratio
// (1 is perfect isolation).
func BenchmarkIsolation(b *testing.B) {
	const n = 600
	var alone, mixed []float64
	for range b.N {
		alone = append(alone, isolationRate(b, n, false))
		mixed = append(mixed, isolationRate(b, n, true))
	}
	b.ReportMetric(median(mixed)/median(alone), "ratio")
	b.ReportMetric(median(alone), "alone/s")
	b.ReportMetric(median(mixed), "beside-hanging/s")
}

// isolationRate returns the deliveries/s of n events to a healthy
// endpoint, with or without a hanging endpoint holding its share.
func isolationRate(b *testing.B, n int, withHanging bool) float64 {
	st := memory.New()
	d, err := convoy.New(convoy.Config{
		Store: st, Workers: 8, PerEndpoint: 4, Timeout: 5 * time.Second,
		AllowNetworks: loopback, Logger: testutil.LoggerAt(b, slog.LevelError),
	})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, d.Start(ctx))
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_ = d.Close(cctx)
	}()
	app, err := d.CreateApp(ctx, convoy.App{Name: "bench"})
	require.NoError(b, err)
	healthy := testutil.NewReceiver(b, nil)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: healthy.URL, EventTypes: []string{"fast"}})
	require.NoError(b, err)
	if withHanging {
		hang := testutil.NewReceiver(b, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: hang.URL, EventTypes: []string{"slow"}})
		require.NoError(b, err)
		for range 20 {
			_, err := d.Send(ctx, app.ID, convoy.Event{Type: "slow", Data: json.RawMessage(`{}`)})
			require.NoError(b, err)
		}
		require.Eventually(b, func() bool { return hang.Count() == 4 }, 10*time.Second, time.Millisecond)
	}
	start := time.Now()
	for i := range n {
		_, err := d.Send(ctx, app.ID, convoy.Event{Type: "fast", Data: json.RawMessage(strconv.Itoa(i))})
		require.NoError(b, err)
	}
	require.Eventually(b, func() bool { return healthy.Count() == n }, 30*time.Second, time.Millisecond)
	return float64(n) / time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// crashable wraps a store and, once crashed, fails every call as a dead
// process would make no more calls.
type crashable struct {
	convoy.Store
	mu      sync.Mutex
	crashed bool
}

var errCrashed = errors.New("process crashed")

func (c *crashable) dead() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.crashed }
func (c *crashable) crash()     { c.mu.Lock(); c.crashed = true; c.mu.Unlock() }

func (c *crashable) Claim(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	if c.dead() {
		return nil, errCrashed
	}
	return c.Store.Claim(ctx, r)
}
func (c *crashable) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if c.dead() {
		return convoy.RecordResult{}, errCrashed
	}
	return c.Store.Record(ctx, t)
}

// InsertEventClaim keeps the wrapped store's fast path (Send leasing to
// idle workers), so a crash also strands deliveries leased that way.
func (c *crashable) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	if c.dead() {
		return convoy.InsertResult{}, errCrashed
	}
	return c.Store.(convoy.ClaimingInserter).InsertEventClaim(ctx, ev, ds, req)
}

func (c *crashable) Release(ctx context.Context, id, lease string) error {
	if c.dead() {
		return errCrashed
	}
	return c.Store.Release(ctx, id, lease)
}

func TestAbandonedDispatcherWorkIsTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convoy.db")
	st1, err := bolt.Open(path, nil)
	require.NoError(t, err)
	cs := &crashable{Store: st1}
	clk := convoytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	var mu sync.Mutex
	hanging := true
	seen := map[string]int{}
	arrived := make(chan struct{}, 100)
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hanging
		seen[r.Header.Get(convoy.HeaderEventID)]++
		mu.Unlock()
		if h {
			<-r.Context().Done() // the first process dies mid-delivery
			return
		}
		arrived <- struct{}{}
	})
	cfg := convoy.Config{Store: cs, Workers: 4, PerEndpoint: 4, Timeout: 2 * time.Second, Lease: time.Minute,
		Logger: testutil.Logger(t), AllowNetworks: loopback, Clock: clk, Retry: convoy.LinearRetry(time.Second, 5)}
	d1, err := convoy.New(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, d1.Start(ctx))
	app, err := d1.CreateApp(ctx, convoy.App{Name: "a"})
	require.NoError(t, err)
	_, err = d1.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL})
	require.NoError(t, err)
	var ids []string
	leased := 0
	for i := range 6 {
		res, err := d1.Send(ctx, app.ID, convoy.Event{Type: "x", Data: json.RawMessage(strconv.Itoa(i))})
		require.NoError(t, err)
		ids = append(ids, res.Event.ID)
		if res.Deliveries[0].Status == convoy.DeliveryProcessing {
			leased++
		}
	}
	require.Equal(t, 4, leased, "Send leased to the four idle workers")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 4 }, 10*time.Second, 5*time.Millisecond, "four deliveries in flight")

	// The process dies: no Close, no further store writes.
	cs.crash()
	require.NoError(t, st1.Close())
	mu.Lock()
	hanging = false
	mu.Unlock()

	st2, err := bolt.Open(path, nil)
	require.NoError(t, err)
	cfg.Store = st2
	d2, err := convoy.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d2.Start(ctx))
	clk.Advance(2 * time.Minute) // the dead process's leases expire
	for range ids {
		<-arrived
	}
	for _, id := range ids {
		_, ds, err := d2.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			dl, err := d2.GetDelivery(ctx, ds[0].ID)
			require.NoError(t, err)
			return dl.Status == convoy.DeliverySuccess
		}, 10*time.Second, 5*time.Millisecond)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d2.Close(closeCtx))
	require.NoError(t, st2.Close())
	// The abandoned dispatcher still has goroutines; stop them for goleak.
	require.Error(t, d1.Close(func() context.Context { c, cl := context.WithCancel(ctx); cl(); return c }()))
}

func TestCloseReleasesInFlightAttempts(t *testing.T) {
	st := memory.New()
	b := setup(t, st, nil)
	rc := testutil.NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	b.endpoint(t, rc.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	<-rc.Requests
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.d.Close(ctx), context.DeadlineExceeded)
	got, err := st.GetDelivery(context.Background(), dl.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryScheduled, got.Status, "released for the next dispatcher")
	require.Equal(t, 0, got.Attempts)
	require.NoError(t, b.d.Close(context.Background()), "Close twice is safe")
}

func TestDeliveryClaimedTooOftenEndsInFailure(t *testing.T) {
	st := memory.New()
	b := setup(t, st, nil)
	// Claims without attempts, as by processes that crash each time.
	require.NoError(t, b.d.Close(context.Background()))
	ctx := context.Background()
	ep, err := b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "http://127.0.0.1:1/"})
	require.NoError(t, err)
	res, err := sendOn(b, ctx, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	dl := res.Deliveries[0]
	now := b.clock.Now()
	for i := range 3 {
		ds, err := st.Claim(ctx, convoy.ClaimRequest{Now: now.Add(time.Duration(i) * time.Hour), Limit: 10, Owner: "crashy", Lease: time.Minute})
		require.NoError(t, err)
		require.Len(t, ds, 1)
	}
	b.clock.Advance(3 * time.Hour)
	events := make(chan convoy.AttemptEvent, 4)
	d2, err := convoy.New(convoy.Config{Store: st, Clock: b.clock, AllowNetworks: loopback, Logger: testutil.Logger(t), MaxClaims: 2,
		OnAttempt: func(e convoy.AttemptEvent) { events <- e }})
	require.NoError(t, err)
	require.NoError(t, d2.Start(ctx))
	defer func() { require.NoError(t, d2.Close(ctx)) }()
	require.Eventually(t, func() bool {
		got, err := st.GetDelivery(ctx, dl.ID)
		require.NoError(t, err)
		return got.Status == convoy.DeliveryFailure
	}, 10*time.Second, 5*time.Millisecond)
	got, err := st.GetDelivery(ctx, dl.ID)
	require.NoError(t, err)
	require.Equal(t, 0, got.Attempts, "no request was made")
	_ = ep
	// It is told apart from a receiver's failure: OnAttempt says so, and
	// Stats counts it.
	select {
	case e := <-events:
		require.True(t, e.Abandoned)
		require.Nil(t, e.Attempt)
		require.Equal(t, convoy.DeliveryFailure, e.Delivery.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("OnAttempt was not called for the abandoned delivery")
	}
	s, err := d2.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.Abandoned)
	require.EqualValues(t, 0, s.Failures, "no receiver failed")
}

func TestConfigValidation(t *testing.T) {
	_, err := convoy.New(convoy.Config{})
	require.ErrorIs(t, err, convoy.ErrInvalidConfig)
	_, err = convoy.New(convoy.Config{Store: memory.New(), Timeout: time.Minute, Lease: time.Second})
	require.ErrorIs(t, err, convoy.ErrInvalidConfig)
	_, err = convoy.New(convoy.Config{Store: memory.New(), Retry: convoy.LinearRetry(-time.Second, 2)})
	require.ErrorIs(t, err, convoy.ErrInvalidRetry)
}

func TestBlockedEndpointURL(t *testing.T) {
	d, err := convoy.New(convoy.Config{Store: memory.New()})
	require.NoError(t, err)
	ctx := context.Background()
	app, err := d.CreateApp(ctx, convoy.App{Name: "a"})
	require.NoError(t, err)
	for _, u := range []string{"http://127.0.0.1/", "http://169.254.169.254/latest", "http://[::1]/", "http://localhost/"} {
		_, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: u})
		require.ErrorIs(t, err, convoy.ErrInvalidURL, u)
		require.ErrorIs(t, err, convoy.ErrBlockedAddress, u)
	}
}

func memoryStore() convoy.Store { return memory.New() }

// TestConfigRefusesNilPolicyAndNegativeSizes: a typed nil *RetryPolicy
// would panic on the first failed attempt; negative sizes and durations
// are mistakes, refused rather than read as "the default" (a Timeout of
// -1s must not quietly become 15 s).
func TestConfigRefusesNilPolicyAndNegativeSizes(t *testing.T) {
	for name, cfg := range map[string]convoy.Config{
		"nil *RetryPolicy":                        {Store: memory.New(), Retry: (*convoy.RetryPolicy)(nil)},
		"empty *RetryPolicy":                      {Store: memory.New(), Retry: &convoy.RetryPolicy{}},
		"negative Workers":                        {Store: memory.New(), Workers: -1},
		"negative MaxClaims":                      {Store: memory.New(), MaxClaims: -3},
		"negative Timeout":                        {Store: memory.New(), Timeout: -time.Second},
		"negative Lease":                          {Store: memory.New(), Lease: -1},
		"negative PollInterval":                   {Store: memory.New(), PollInterval: -time.Second},
		"negative MaxRetryAfter":                  {Store: memory.New(), MaxRetryAfter: -time.Minute},
		"negative StatsWindow":                    {Store: memory.New(), StatsWindow: -time.Minute},
		"negative Retention":                      {Store: memory.New(), Retention: -time.Hour},
		"DeadAfterFailures with a negative field": {Store: memory.New(), DeadEndpoint: convoy.DeadAfterFailures{Deliveries: -1}},
		"nil *DeadAfterFailures":                  {Store: memory.New(), DeadEndpoint: (*convoy.DeadAfterFailures)(nil)},
	} {
		_, err := convoy.New(cfg)
		require.ErrorIs(t, err, convoy.ErrInvalid, name)
		if field, ok := strings.CutPrefix(name, "negative "); ok {
			require.ErrorIs(t, err, convoy.ErrInvalidConfig, name)
			require.ErrorContains(t, err, "Config."+field, name)
		}
	}
	_, err := convoy.New(convoy.Config{Store: memory.New(), Timeout: 0, Lease: 0})
	require.NoError(t, err, "zero still means the default")
}

// panicky is a RetryStrategy, Signer or DeadEndpointPolicy with a bug.
type panicky struct{}

func (panicky) NextRetry(int) (time.Duration, bool)              { panic("retry bug") }
func (panicky) Sign(convoy.SignInput) (http.Header, error)       { panic("signer bug") }
func (panicky) Dead(convoy.EndpointHealth, bool, time.Time) bool { panic("policy bug") }

// TestPanickingExtensionsDoNotCrash: a bug in a user's Signer,
// RetryStrategy or DeadEndpoint policy fails the delivery, recorded; it
// does not take the process down.
func TestPanickingExtensionsDoNotCrash(t *testing.T) {
	rc := newStatusReceiver(t, 500)
	for name, tweak := range map[string]func(*convoy.Config){
		"signer": func(c *convoy.Config) { c.Signer = panicky{} },
		"retry":  func(c *convoy.Config) { c.Retry = panicky{} },
		"policy": func(c *convoy.Config) { c.DeadEndpoint = panicky{} },
	} {
		t.Run(name, func(t *testing.T) {
			b := setup(t, memoryStore(), tweak)
			b.endpoint(t, rc.URL, nil)
			ev := b.send(t, "x", `{}`)
			id := b.deliveries(t, ev.ID)[0].ID
			require.Eventually(t, func() bool {
				dl, err := b.d.GetDelivery(context.Background(), id)
				require.NoError(t, err)
				if dl.Status == convoy.DeliveryRetry {
					b.clock.Advance(time.Minute)
				}
				return dl.Status == convoy.DeliveryFailure
			}, 10*time.Second, 5*time.Millisecond)
			as := b.attempts(t, id)
			require.NotEmpty(t, as, "the failure is recorded with its attempt")
		})
	}
}
