//go:build ignore

// Command genv1 writes the store file testdata/v1.db in the layout of
// schema version 1, as convoy v0.1.0 wrote it, for TestMigrateV1. It must
// run against v0.1.0 itself: copy it into a checkout of that release and
// run
//
//	go run genv1.go v1.db
//
// The records have fixed IDs and times, which the test knows: two apps;
// app 1 with an active and an inactive endpoint, app 2 with one; six
// events of app 1 (three "invoice.paid", two "invoice.created", one
// "order.shipped") each delivered to both of its endpoints (Discarded for
// the inactive one), the first with idempotency key "order-42", and two
// "invoice.paid" events of app 2. Of app 1's deliveries to the active
// endpoint, the first succeeded (one attempt), the second is in Retry
// (one attempt), the third is leased by "node-1", the rest are Scheduled.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
)

// id returns the fixed ID number n of a kind of record.
func id(kind byte, n int) string {
	return fmt.Sprintf("01900000-0000-7000-8000-%02x%010x", kind, n)
}

const (
	kindApp      = 0xa1
	kindEndpoint = 0xe9
	kindEvent    = 0xee
	kindDelivery = 0xde
	kindAttempt  = 0xa7
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run genv1.go <path>")
	}
	ctx := context.Background()
	s, err := bolt.Open(os.Args[1], nil)
	check(err)
	for a := 1; a <= 2; a++ {
		check(s.CreateApp(ctx, &convoy.App{
			ID: id(kindApp, a), Name: fmt.Sprintf("App %d", a),
			Secrets:   []convoy.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: t0}},
			CreatedAt: t0, UpdatedAt: t0,
		}))
	}
	endpoint := func(n, app int, st convoy.EndpointStatus) {
		check(s.CreateEndpoint(ctx, &convoy.Endpoint{
			ID: id(kindEndpoint, n), AppID: id(kindApp, app), URL: fmt.Sprintf("https://hooks%d.example/convoy", n),
			Status: st, CreatedAt: t0, UpdatedAt: t0,
		}))
	}
	endpoint(1, 1, convoy.EndpointActive)
	endpoint(2, 1, convoy.EndpointInactive)
	endpoint(3, 2, convoy.EndpointActive)

	types := []string{"invoice.paid", "invoice.created", "invoice.paid", "order.shipped", "invoice.created", "invoice.paid"}
	dn := 0
	delivery := func(ev *convoy.Event, ep int, st convoy.DeliveryStatus) *convoy.Delivery {
		dn++
		return &convoy.Delivery{
			ID: id(kindDelivery, dn), EventID: ev.ID, AppID: ev.AppID, EndpointID: id(kindEndpoint, ep),
			EventType: ev.Type, Status: st, NextAttemptAt: ev.CreatedAt, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
		}
	}
	for i, typ := range types {
		ev := &convoy.Event{
			ID: id(kindEvent, i+1), AppID: id(kindApp, 1), Type: typ,
			Data: []byte(fmt.Sprintf(`{"n":%d}`, i+1)), CreatedAt: t0.Add(time.Duration(i) * time.Minute),
		}
		if i == 0 {
			ev.IdempotencyKey = "order-42"
		}
		_, _, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{
			delivery(ev, 1, convoy.DeliveryScheduled), delivery(ev, 2, convoy.DeliveryDiscarded),
		})
		check(err)
	}
	for i := range 2 {
		ev := &convoy.Event{
			ID: id(kindEvent, 7+i), AppID: id(kindApp, 2), Type: "invoice.paid",
			Data: []byte(`{}`), CreatedAt: t0.Add(time.Duration(10+i) * time.Minute),
		}
		_, _, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{delivery(ev, 3, convoy.DeliveryScheduled)})
		check(err)
	}

	// Deliveries 1, 3 and 5 go to endpoint 1: claim them in due order.
	for n, next := range []convoy.DeliveryStatus{convoy.DeliverySuccess, convoy.DeliveryRetry, ""} {
		now := t0.Add(time.Duration(2*n) * time.Minute)
		got, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 1, Owner: "node-1", Lease: time.Hour})
		check(err)
		if len(got) != 1 || got[0].ID != id(kindDelivery, 2*n+1) {
			log.Fatalf("claimed %v", got)
		}
		if next == "" {
			break // stays leased
		}
		d := got[0]
		code := map[convoy.DeliveryStatus]int{convoy.DeliverySuccess: 200, convoy.DeliveryRetry: 503}[next]
		a := &convoy.Attempt{
			ID: id(kindAttempt, n+1), DeliveryID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, Number: 1,
			URL: "https://hooks1.example/convoy", Method: http.MethodPost,
			RequestHeaders: http.Header{"Content-Type": {"application/json"}}, RequestBody: []byte(`{}`),
			StatusCode: code, ResponseBody: []byte("ok"), StartedAt: now, Duration: 20 * time.Millisecond,
		}
		if code != 200 {
			a.Error = "HTTP 503"
		}
		_, err = s.Record(ctx, convoy.Transition{DeliveryID: d.ID, LeaseID: d.LeaseID, Now: now, Attempt: a,
			Status: next, NextAttemptAt: now.Add(time.Hour)})
		check(err)
	}
	check(s.Close())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
