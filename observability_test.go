package convoy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// hookLog collects hook calls for assertions.
type hookLog struct {
	mu        sync.Mutex
	attempts  []convoy.AttemptEvent
	endpoints []convoy.EndpointStatusEvent
}

func (h *hookLog) onAttempt(e convoy.AttemptEvent) {
	h.mu.Lock()
	h.attempts = append(h.attempts, e)
	h.mu.Unlock()
}

func (h *hookLog) onEndpoint(e convoy.EndpointStatusEvent) {
	h.mu.Lock()
	h.endpoints = append(h.endpoints, e)
	h.mu.Unlock()
}

func (h *hookLog) snapshot() ([]convoy.AttemptEvent, []convoy.EndpointStatusEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]convoy.AttemptEvent(nil), h.attempts...), append([]convoy.EndpointStatusEvent(nil), h.endpoints...)
}

func TestHooks(t *testing.T) {
	hl := &hookLog{}
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.Retry = convoy.LinearRetry(time.Minute, 1)
		c.OnAttempt = hl.onAttempt
		c.OnEndpointStatus = hl.onEndpoint
	})
	ctx := context.Background()
	ok := testutil.NewReceiver(t, nil)
	failing := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	gone := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) })
	okEP := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
	failEP := b.endpoint(t, failing.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"fail"} })
	goneEP := b.endpoint(t, gone.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"gone"} })

	okDL := b.deliveries(t, b.send(t, "ok", `{}`).ID)[0]
	failDL := b.deliveries(t, b.send(t, "fail", `{}`).ID)[0]
	goneDL := b.deliveries(t, b.send(t, "gone", `{}`).ID)[0]
	b.waitStatus(t, okDL.ID, convoy.DeliverySuccess)
	b.waitStatus(t, failDL.ID, convoy.DeliveryRetry)
	b.waitStatus(t, goneDL.ID, convoy.DeliveryFailure)
	b.clock.Advance(time.Minute)
	b.waitStatus(t, failDL.ID, convoy.DeliveryFailure)
	_, err := b.d.SetEndpointStatus(ctx, failEP.ID, convoy.EndpointActive)
	require.NoError(t, err)

	var attempts []convoy.AttemptEvent
	var changes []convoy.EndpointStatusEvent
	require.Eventually(t, func() bool {
		attempts, changes = hl.snapshot()
		return len(attempts) == 4 && len(changes) == 3
	}, 10*time.Second, 5*time.Millisecond)

	byDelivery := map[string][]convoy.DeliveryStatus{}
	for _, a := range attempts {
		require.NotNil(t, a.Attempt)
		require.Equal(t, a.Delivery.ID, a.Attempt.DeliveryID)
		byDelivery[a.Delivery.ID] = append(byDelivery[a.Delivery.ID], a.Delivery.Status)
	}
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliverySuccess}, byDelivery[okDL.ID])
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryRetry, convoy.DeliveryFailure}, byDelivery[failDL.ID])
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryFailure}, byDelivery[goneDL.ID])

	reasons := map[string][]convoy.StatusReason{}
	for _, c := range changes {
		reasons[c.EndpointID] = append(reasons[c.EndpointID], c.Reason)
	}
	require.Equal(t, []convoy.StatusReason{convoy.ReasonGone}, reasons[goneEP.ID])
	require.Equal(t, []convoy.StatusReason{convoy.ReasonFailing, convoy.ReasonManual}, reasons[failEP.ID])
	require.Empty(t, reasons[okEP.ID])
}

// TestSlowOrPanickingHooksDoNotStopDeliveries: hooks run on their own
// goroutine, so one that blocks or panics costs only hook calls.
func TestSlowOrPanickingHooksDoNotStopDeliveries(t *testing.T) {
	for _, kind := range []string{"slow", "panicking"} {
		t.Run(kind, func(t *testing.T) {
			release := make(chan struct{})
			hook := func(convoy.AttemptEvent) { <-release }
			if kind == "panicking" {
				hook = func(convoy.AttemptEvent) { panic("hook bug") }
			}
			b := setup(t, memoryStore(), func(c *convoy.Config) {
				c.OnAttempt = hook
				c.OnEndpointStatus = func(convoy.EndpointStatusEvent) { panic("hook bug") }
			})
			t.Cleanup(func() { close(release) }) // runs before the dispatcher's Close
			a := testutil.NewReceiver(t, nil)
			c := testutil.NewReceiver(t, nil)
			b.endpoint(t, a.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"a"} })
			cEP := b.endpoint(t, c.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"c"} })
			var ids []string
			for i := range 30 {
				typ := "a"
				if i%2 == 1 {
					typ = "c"
				}
				ids = append(ids, b.deliveries(t, b.send(t, typ, `{}`).ID)[0].ID)
			}
			for _, id := range ids {
				b.waitStatus(t, id, convoy.DeliverySuccess)
			}
			_, err := b.d.SetEndpointStatus(context.Background(), cEP.ID, convoy.EndpointInactive)
			require.NoError(t, err, "a panicking status hook does not fail the call")
		})
	}
}

// TestLogRecords: one Debug record per successful attempt, Warn for
// failures with endpoint, delivery, status and error, Info for endpoint
// status changes; no secret anywhere.
func TestLogRecords(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.Logger = logger
		c.Retry = convoy.LinearRetry(time.Minute, 0)
	})
	ok := testutil.NewReceiver(t, nil)
	bad := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) })
	b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
	badEP := b.endpoint(t, bad.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"bad"} })
	okDL := b.deliveries(t, b.send(t, "ok", `{}`).ID)[0]
	badDL := b.deliveries(t, b.send(t, "bad", `{}`).ID)[0]
	b.waitStatus(t, okDL.ID, convoy.DeliverySuccess)
	b.waitStatus(t, badDL.ID, convoy.DeliveryFailure)

	var records []map[string]any
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		records = records[:0]
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var r map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &r))
			records = append(records, r)
		}
		return find(records, "convoy: endpoint status changed") != nil
	}, 10*time.Second, 5*time.Millisecond)

	success := find(records, "convoy: attempt succeeded")
	require.NotNil(t, success)
	require.Equal(t, "DEBUG", success["level"])
	require.Equal(t, okDL.ID, success["delivery_id"])
	require.EqualValues(t, 200, success["status_code"])

	failure := find(records, "convoy: attempt failed")
	require.NotNil(t, failure)
	require.Equal(t, "WARN", failure["level"])
	require.Equal(t, badDL.ID, failure["delivery_id"])
	require.Equal(t, badEP.ID, failure["endpoint_id"])
	require.EqualValues(t, 502, failure["status_code"])
	require.Contains(t, failure["error"], "502")

	change := find(records, "convoy: endpoint status changed")
	require.Equal(t, "INFO", change["level"])
	require.Equal(t, badEP.ID, change["endpoint_id"])
	require.Equal(t, "inactive", change["to"])
	require.Equal(t, string(convoy.ReasonFailing), change["reason"])

	mu.Lock()
	defer mu.Unlock()
	require.NotContains(t, buf.String(), string(b.app.Secrets[0].Value))
	require.NotContains(t, buf.String(), "whsec_")
}

func find(records []map[string]any, msg string) map[string]any {
	for _, r := range records {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestEndpointHealth: the endpoint's health follows its attempts.
func TestEndpointHealth(t *testing.T) {
	var mu sync.Mutex
	fail := true
	b := setup(t, memoryStore(), func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 5) })
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(503)
		}
	})
	ep := b.endpoint(t, rc.URL, nil)
	ctx := context.Background()
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	start := b.clock.Now()
	b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
	b.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return len(b.attempts(t, dl.ID)) == 2 }, 10*time.Second, 5*time.Millisecond)
	got, err := b.d.GetEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Health.ConsecutiveFailures)
	require.Equal(t, 503, got.Health.LastStatusCode)
	require.Equal(t, start, got.Health.FailingSince)
	require.Equal(t, start.Add(time.Minute), got.Health.LastAttemptAt)
	require.Contains(t, got.Health.LastError, "503")

	mu.Lock()
	fail = false
	mu.Unlock()
	b.clock.Advance(time.Minute)
	b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
	got, err = b.d.GetEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Zero(t, got.Health.ConsecutiveFailures)
	require.True(t, got.Health.FailingSince.IsZero())
	require.Equal(t, 200, got.Health.LastStatusCode)
	require.Equal(t, start.Add(2*time.Minute), got.Health.LastSuccessAt)
}
