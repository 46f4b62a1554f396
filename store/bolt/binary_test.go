package bolt

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
)

// The encoders of schema 1's forms, as v0.1.0 wrote them: files migrated
// from it keep such records, which the decoders must still read.

func binEventV1(ev *convoy.Event) []byte {
	w := newW(kindEvent, 128)
	w.str(ev.ID)
	w.str(ev.AppID)
	w.str(ev.Type)
	w.bytes(ev.Data)
	w.str(ev.IdempotencyKey)
	w.time(ev.CreatedAt)
	return w.b
}

func binDeliveryV1(d *convoy.Delivery) []byte {
	w := newW(kindDelivery, 256)
	w.str(d.ID)
	w.str(d.EventID)
	w.str(d.AppID)
	w.str(d.EndpointID)
	w.str(d.EventType)
	w.str(string(d.Status))
	w.int(int64(d.Attempts))
	w.int(int64(d.RoundAttempts))
	w.int(int64(d.Claims))
	w.time(d.NextAttemptAt)
	w.str(d.LeaseOwner)
	w.str(d.LeaseID)
	w.time(d.LeaseExpiresAt)
	w.str(d.LastError)
	w.time(d.CreatedAt)
	w.time(d.UpdatedAt)
	return w.b
}

func binAttemptV1(a *convoy.Attempt) []byte {
	w := newW(kindAttempt, 512)
	w.str(a.ID)
	w.str(a.DeliveryID)
	w.str(a.EventID)
	w.str(a.EndpointID)
	w.int(int64(a.Number))
	w.str(a.URL)
	w.str(a.Method)
	w.header(a.RequestHeaders)
	w.bytes(a.RequestBody)
	w.int(int64(a.StatusCode))
	w.header(a.ResponseHeaders)
	w.bytes(a.ResponseBody)
	w.bool(a.ResponseTruncated)
	w.str(a.Error)
	w.str(a.RemoteIP)
	w.time(a.StartedAt)
	w.int(int64(a.Duration))
	return w.b
}

var (
	binNow = time.Date(2030, 6, 1, 12, 0, 0, 123, time.UTC)
	// upperID is a valid ID that is not in canonical (lower-case) form.
	upperID = strings.ToUpper(convoy.NewID())
)

// deliveryCases are deliveries in every state, with values that the
// compact forms must keep as they are.
func deliveryCases() map[string]*convoy.Delivery {
	ev := storetest.NewEvent(convoy.NewID(), binNow)
	base := storetest.NewDelivery(ev, convoy.NewID())
	leased := base.Clone()
	leased.Status, leased.LeaseOwner, leased.LeaseID = convoy.DeliveryProcessing, convoy.NewID(), convoy.NewID()
	leased.LeaseExpiresAt, leased.Claims = binNow.Add(time.Minute), 2
	retry := base.Clone()
	retry.Status, retry.Attempts, retry.RoundAttempts, retry.LastError = convoy.DeliveryRetry, 3, 2, "HTTP 503"
	odd := leased.Clone()
	odd.ID, odd.LeaseID, odd.LeaseOwner = upperID, "lease-7", strings.Repeat("node", 20)
	odd.LeaseExpiresAt = time.Unix(0, 0).UTC()
	far := leased.Clone()
	far.LeaseExpiresAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	far.Status = convoy.DeliveryStatus("Custom")
	return map[string]*convoy.Delivery{"scheduled": base, "leased": leased, "retry": retry, "odd": odd, "far": far}
}

func attemptCase() *convoy.Attempt {
	ev := storetest.NewEvent(convoy.NewID(), binNow)
	a := storetest.NewAttempt(storetest.NewDelivery(ev, convoy.NewID()), 2, 503, binNow)
	a.RequestHeaders = http.Header{"Content-Type": {"application/json"}, "X-Convoy-Event-Id": {ev.ID}, "X-Team": {"a", "b"}}
	a.ResponseHeaders = http.Header{"Retry-After": {"30"}, "x-lower": {"kept as is"}, "Empty": {}}
	a.RequestBody, a.ResponseBody = []byte(`{"a":1}`), []byte("busy")
	a.ResponseTruncated, a.Error, a.RemoteIP = true, "HTTP 503", "203.0.113.7"
	return a
}

// TestRecordRoundTrip encodes events, deliveries and attempts and decodes
// them back, in the current forms and in schema 1's.
func TestRecordRoundTrip(t *testing.T) {
	ev := storetest.NewEvent(convoy.NewID(), binNow)
	ev.IdempotencyKey = "order-42"
	upper := ev.Clone()
	upper.AppID = upperID
	for _, e := range []*convoy.Event{ev, upper} {
		for _, enc := range [][]byte{binEvent(e), binEventV1(e)} {
			got, err := decodeEvent(enc)
			require.NoError(t, err)
			require.Equal(t, e, got)
			meta, err := decodeEventMeta(enc)
			require.NoError(t, err)
			want := e.Clone()
			want.Data = nil
			require.Equal(t, want, meta)
		}
	}
	for name, d := range deliveryCases() {
		for _, enc := range [][]byte{binDelivery(d), binDeliveryV1(d)} {
			got, err := decodeDelivery(enc)
			require.NoError(t, err, name)
			require.Equal(t, d, got, name)
			final, err := deliveryFinal(enc)
			require.NoError(t, err, name)
			require.Equal(t, d.Status.Final(), final, name)
		}
	}
	a := attemptCase()
	for _, enc := range [][]byte{binAttempt(a), binAttemptV1(a)} {
		got, err := decodeAttempt(enc)
		require.NoError(t, err)
		require.Equal(t, a, got)
	}
	require.Less(t, len(binAttempt(a)), len(binAttemptV1(a)))
}

// TestEventTraceParentTrailer: an event's trace context is a trailer of
// its record, absent when the event has none, so records written before
// it existed read as events without one, and those written since without
// one are the same bytes as before.
func TestEventTraceParentTrailer(t *testing.T) {
	ev := storetest.NewEvent(convoy.NewID(), binNow)
	plain := binEvent(ev)
	traced := ev.Clone()
	traced.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	enc := binEvent(traced)
	require.Equal(t, plain, enc[:len(plain)], "the trailer follows the fields as they were")
	got, err := decodeEvent(enc)
	require.NoError(t, err)
	require.Equal(t, traced, got)
	meta, err := decodeEventMeta(enc)
	require.NoError(t, err)
	require.Equal(t, traced.TraceParent, meta.TraceParent)
	old, err := decodeEvent(plain)
	require.NoError(t, err)
	require.Empty(t, old.TraceParent)
}

// TestDeliverySizeKeptWhenClaimed checks that a delivery's record has the
// same size whether or not it is leased, so claiming and recording do not
// split its page.
func TestDeliverySizeKeptWhenClaimed(t *testing.T) {
	cases := deliveryCases()
	idle, leased := cases["scheduled"], cases["leased"]
	leased.Claims = idle.Claims
	require.Len(t, binDelivery(leased), len(binDelivery(idle)))
	require.Less(t, len(binDelivery(leased)), len(binDeliveryV1(leased)))
}

// TestRecordDecodeTruncated checks that every truncation of a record is an
// error, not a panic or a wrong value.
func TestRecordDecodeTruncated(t *testing.T) {
	ev := storetest.NewEvent(convoy.NewID(), binNow)
	encs := [][]byte{binEvent(ev), binAttempt(attemptCase())}
	for _, d := range deliveryCases() {
		encs = append(encs, binDelivery(d))
	}
	for _, enc := range encs {
		for n := range len(enc) {
			_, err1 := decodeEvent(enc[:n])
			_, err2 := decodeDelivery(enc[:n])
			_, err3 := decodeAttempt(enc[:n])
			require.Error(t, err1)
			require.Error(t, err2)
			require.Error(t, err3)
		}
	}
}
