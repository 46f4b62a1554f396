// Package storetest is the conformance suite of [convoy.Store]: every
// behaviour the Dispatcher relies on, checked the same way for every
// implementation. A store's test file calls [Run] with a constructor, adds
// the cases that only make sense for that backend, and may run the shared
// benchmarks [BenchmarkInsert] and [BenchmarkClaim].
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) convoy.Store {
//			s := mystore.Open(t.TempDir())
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// When the Store contract changes, change this suite, not one store's
// tests.
package storetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/convoykit/convoy"
)

// Run runs the conformance suite against the stores made by newStore. Every
// subtest calls newStore once for a fresh, empty store and runs in parallel
// with the others, so newStore must be safe to call concurrently.
//
// newStore registers the store's teardown with t.Cleanup. Some subtests
// close the store themselves, so that teardown must accept a store that is
// already closed (Close then returns nil or ErrClosed).
func Run(t *testing.T, newStore func(t *testing.T) convoy.Store) {
	t.Helper()
	for _, g := range suite() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, newStore(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s convoy.Store)
}

type group struct {
	name  string
	cases []testCase
}

func suite() []group {
	return []group{
		{"Apps", []testCase{
			{"CreateGetUpdateDelete", testAppCRUD},
			{"InvalidInput", testAppInvalid},
			{"ListPagination", testListApps},
			{"DeleteCascades", testDeleteAppCascades},
			{"UpdatePatch", testUpdateAppPatch},
			{"UpdateAborts", testUpdateAppAborts},
			{"UpdateKeepsIdentity", testUpdateAppKeepsIdentity},
			{"UpdateConcurrent", testUpdateAppConcurrent},
		}},
		{"Endpoints", []testCase{
			{"CreateGetUpdateDelete", testEndpointCRUD},
			{"InvalidInput", testEndpointInvalid},
			{"ListPagination", testListEndpoints},
			{"DeleteRemovesDeliveries", testDeleteEndpoint},
			{"UpdatePatch", testUpdateEndpointPatch},
			{"UpdateAborts", testUpdateEndpointAborts},
			{"UpdateKeepsIdentity", testUpdateEndpointKeepsIdentity},
			{"UpdateStatusCounts", testUpdateEndpointStatusCounts},
			{"UpdateKeepsStatusChangedMeanwhile", testUpdateEndpointKeepsStatus},
			{"UpdateConcurrent", testUpdateEndpointConcurrent},
			{"FlowControl", testEndpointFlowControl},
		}},
		{"Events", []testCase{
			{"Insert", testInsertEvent},
			{"SkipsRemovedEndpoints", testInsertSkipsRemovedEndpoint},
			{"Duplicates", testInsertDuplicates},
			{"Atomic", testInsertAtomic},
			{"InvalidInput", testInsertInvalid},
			{"Idempotency", testIdempotency},
			{"TraceParent", testEventTraceParent},
		}},
		{"ListEvents", []testCase{
			{"NewestFirst", testListEventsNewestFirst},
			{"Pagination", testListEventsPagination},
			{"Filters", testListEventsFilters},
			{"CursorHoldsAcrossWrites", testListEventsCursor},
			{"DeletedEventsGone", testListEventsAfterDeletes},
			{"InvalidInput", testListEventsInvalid},
		}},
		{"Lists", []testCase{
			{"Deliveries", testListDeliveries},
			{"DeliveriesByApp", testListDeliveriesByApp},
			{"DeliveriesCursorHoldsAcrossWrites", testListDeliveriesCursor},
			{"PageSizes", testPageSizes},
			{"Attempts", testListAttempts},
			{"AttemptsNewestFirst", testListAttemptsNewestFirst},
			{"MalformedCursor", testMalformedCursor},
		}},
		{"Claim", []testCase{
			{"DueOnly", testClaimDueOnly},
			{"EarliestFirstWithLimit", testClaimOrder},
			{"Lease", testClaimLease},
			{"FinalNeverClaimed", testClaimFinal},
			{"Capacity", testClaimCapacity},
			{"Caps", testClaimCaps},
			{"Concurrent", testClaimConcurrent},
			{"InvalidInput", testClaimInvalid},
			{"ClaimEvents", testClaimEvents},
		}},
		{"InsertClaim", []testCase{
			{"Leases", testInsertClaimLeases},
			{"NeverOvertakes", testInsertClaimNeverOvertakes},
			{"Capacity", testInsertClaimCapacity},
			{"Idempotent", testInsertClaimIdempotent},
			{"Stats", testInsertClaimStats},
			{"InvalidInput", testInsertClaimInvalid},
			{"Concurrent", testInsertClaimConcurrent},
		}},
		{"Ordered", []testCase{
			{"OneAtATimeInIDOrder", testOrderedOneAtATime},
			{"RetryBlocks", testOrderedRetryBlocks},
			{"FailureUnblocks", testOrderedFailureUnblocks},
			{"LeaseExpiry", testOrderedLeaseExpiry},
			{"UnorderedUnaffected", testOrderedUnorderedUnaffected},
			{"Toggle", testOrderedToggle},
			{"InsertClaim", testOrderedInsertClaim},
			{"Concurrent", testOrderedConcurrent},
		}},
		{"Record", []testCase{
			{"Success", testRecordSuccess},
			{"Retry", testRecordRetry},
			{"FailureChangesEndpoint", testRecordFailure},
			{"PendingBecomesActive", testRecordPending},
			{"WithoutAttempt", testRecordWithoutAttempt},
			{"InvalidInput", testRecordInvalid},
			{"Fencing", testRecordFencing},
			{"ExpiredLeaseNotReclaimed", testRecordExpiredNotReclaimed},
			{"Concurrent", testRecordConcurrent},
		}},
		{"Release", []testCase{
			{"Release", testRelease},
			{"Fencing", testReleaseFencing},
		}},
		{"NextDue", []testCase{
			{"NextDue", testNextDue},
		}},
		{"Requeue", []testCase{
			{"OneDelivery", testRequeueOne},
			{"Endpoint", testRequeueEndpoint},
			{"CreatedRange", testRequeueCreatedRange},
		}},
		{"Retention", []testCase{
			{"DeleteBefore", testDeleteBefore},
			{"DeleteBeforeLimit", testDeleteBeforeLimit},
			{"DeleteBeforeOneAtATime", testDeleteBeforeOneAtATime},
			{"DeleteBeforeDefaultBatch", testDeleteBeforeDefaultBatch},
		}},
		{"NoAliasing", []testCase{
			{"Apps", testAliasApp},
			{"Endpoints", testAliasEndpoint},
			{"Events", testAliasEvent},
			{"Deliveries", testAliasDelivery},
			{"Attempts", testAliasAttempt},
		}},
		{"Stats", []testCase{
			{"MatchRecount", testStats},
			{"DueNowIsBounded", testStatsDueNowIsBounded},
		}},
		{"Close", []testCase{
			{"CallsAfterClose", testClose},
		}},
	}
}

// epoch is the creation time of the fixtures that take no time argument.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// NewApp returns a valid app with a fresh ID, a name, a support address
// and one generated secret. It panics only if the system's random source
// fails.
func NewApp() *convoy.App {
	v, err := convoy.GenerateSecret()
	if err != nil {
		panic(err)
	}
	return &convoy.App{
		ID:           convoy.NewID(),
		Name:         "Acme Corp",
		SupportEmail: "webhooks@acme.example",
		Secrets:      []convoy.Secret{{Value: v, CreatedAt: epoch}},
		CreatedAt:    epoch,
		UpdatedAt:    epoch,
	}
}

// NewEndpoint returns a valid active endpoint of the app appID with a fresh
// ID, an event-type filter, a custom header and its own retry policy.
func NewEndpoint(appID string) *convoy.Endpoint {
	retry := convoy.ScheduleRetry(0.1, time.Second, time.Minute, time.Hour)
	return &convoy.Endpoint{
		ID:          convoy.NewID(),
		AppID:       appID,
		URL:         "https://hooks.acme.example/convoy",
		Description: "billing events",
		Status:      convoy.EndpointActive,
		EventTypes:  []string{"invoice.paid", "invoice.created"},
		Headers:     map[string]string{"Authorization": "Bearer test-token"},
		Retry:       &retry,
		CreatedAt:   epoch,
		UpdatedAt:   epoch,
	}
}

// NewEvent returns a valid "invoice.paid" event of the app appID with a
// fresh ID, a small JSON payload and no idempotency key, created at
// createdAt.
func NewEvent(appID string, createdAt time.Time) *convoy.Event {
	return &convoy.Event{
		ID:        convoy.NewID(),
		AppID:     appID,
		Type:      "invoice.paid",
		Data:      json.RawMessage(`{"invoice":"in_1042","amount":4200,"currency":"EUR"}`),
		CreatedAt: createdAt,
	}
}

// NewDelivery returns a Scheduled delivery of ev to the endpoint
// endpointID with a fresh ID, created and due at ev.CreatedAt.
func NewDelivery(ev *convoy.Event, endpointID string) *convoy.Delivery {
	return &convoy.Delivery{
		ID:            convoy.NewID(),
		EventID:       ev.ID,
		AppID:         ev.AppID,
		EndpointID:    endpointID,
		EventType:     ev.Type,
		Status:        convoy.DeliveryScheduled,
		NextAttemptAt: ev.CreatedAt,
		CreatedAt:     ev.CreatedAt,
		UpdatedAt:     ev.CreatedAt,
	}
}

// NewAttempt returns attempt number n of d, with a fresh ID, started at
// startedAt and answered with statusCode (0: no response). Error is set
// unless statusCode is 2xx, so the attempt counts as failed.
func NewAttempt(d *convoy.Delivery, n, statusCode int, startedAt time.Time) *convoy.Attempt {
	a := &convoy.Attempt{
		ID:         convoy.NewID(),
		DeliveryID: d.ID,
		EventID:    d.EventID,
		EndpointID: d.EndpointID,
		Number:     n,
		URL:        "https://hooks.acme.example/convoy",
		Method:     http.MethodPost,
		RequestHeaders: http.Header{
			"Content-Type":       {"application/json"},
			"X-Convoy-Signature": {"t=1893456000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"},
		},
		RequestBody:     []byte(`{"invoice":"in_1042","amount":4200,"currency":"EUR"}`),
		StatusCode:      statusCode,
		ResponseHeaders: http.Header{"Content-Type": {"text/plain"}},
		ResponseBody:    []byte("ok"),
		RemoteIP:        "203.0.113.7",
		StartedAt:       startedAt,
		Duration:        120 * time.Millisecond,
	}
	switch {
	case statusCode == 0:
		a.ResponseHeaders, a.ResponseBody = nil, nil
		a.Error = "dial tcp 203.0.113.7:443: connection refused"
	case statusCode < 200 || statusCode > 299:
		a.ResponseBody = []byte("upstream unavailable")
		a.Error = fmt.Sprintf("HTTP %d", statusCode)
	}
	return a
}
