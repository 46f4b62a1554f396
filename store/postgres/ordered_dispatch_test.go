package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/store/postgres"
)

// process is one dispatcher of TestOrderedDeliveryAcrossDispatchers on
// its own Store, which stops writing when the process "dies".
type process struct {
	convoy.Store
	name string

	mu   sync.Mutex
	dead bool
}

var errDead = errors.New("process died")

func (p *process) died() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.dead }
func (p *process) die()       { p.mu.Lock(); p.dead = true; p.mu.Unlock() }

func (p *process) Claim(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	if p.died() {
		return nil, errDead
	}
	return p.Store.Claim(ctx, r)
}

func (p *process) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if p.died() {
		return convoy.RecordResult{}, errDead
	}
	return p.Store.Record(ctx, t)
}

func (p *process) Release(ctx context.Context, id, lease string) error {
	if p.died() {
		return errDead
	}
	return p.Store.Release(ctx, id, lease)
}

// InsertEventClaim and SubscribeWake keep the store's capabilities.
func (p *process) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	if p.died() {
		return convoy.InsertResult{}, errDead
	}
	return p.Store.(convoy.ClaimingInserter).InsertEventClaim(ctx, ev, ds, req)
}

func (p *process) SubscribeWake(fn func()) func() { return p.Store.(convoy.Waker).SubscribeWake(fn) }

// tagged adds the process's name to every request it sends.
type tagged struct{ name string }

func (tg tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Process", tg.name)
	return http.DefaultTransport.RoundTrip(r)
}

// heldRequest is a request the receiver holds until the test answers it.
type heldRequest struct {
	n       int    // the event's data
	process string // the process that sent it
	reply   chan int
}

// TestOrderedDeliveryAcrossDispatchers: two dispatchers on one schema
// deliver to an ordered endpoint; the receiver gets the events in Send
// order, one request at a time, across a failed attempt and its retry and
// across the death of the process that was delivering (the other takes
// the event over when its lease expires, and then the rest).
func TestOrderedDeliveryAcrossDispatchers(t *testing.T) {
	const n = 12
	ctx := context.Background()
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	clk := convoytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))

	var (
		mu             sync.Mutex
		inFlight, most int
		arrived        = make(chan heldRequest, 100)
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, err := strconv.Atoi(string(body))
		if err != nil {
			v = -1
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		h := heldRequest{n: v, process: r.Header.Get("X-Test-Process"), reply: make(chan int, 1)}
		arrived <- h
		code := http.StatusServiceUnavailable
		select {
		case code = <-h.reply:
		case <-r.Context().Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(code)
	}))
	defer rc.Close()
	next := func() heldRequest {
		t.Helper()
		select {
		case h := <-arrived:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("no request arrived")
			return heldRequest{}
		}
	}

	procs := map[string]*process{"a": {Store: a, name: "a"}, "b": {Store: b, name: "b"}}
	ds := map[string]*convoy.Dispatcher{}
	for name, p := range procs {
		d, err := convoy.New(convoy.Config{
			Store: p, Workers: 8, PerEndpoint: 8, Timeout: 2 * time.Second, Lease: time.Minute,
			Retry: convoy.LinearRetry(time.Minute, 3), Clock: clk,
			AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			HTTPClient:    &http.Client{Transport: tagged{name}},
			Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		})
		require.NoError(t, err)
		require.NoError(t, d.Start(ctx))
		ds[name] = d
	}
	var dead string
	defer func() {
		for name, d := range ds {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if name == dead {
				cancel() // the dead process's goroutines only need stopping
			}
			err := d.Close(cctx)
			cancel()
			if name != dead {
				require.NoError(t, err)
			}
		}
	}()

	app, err := ds["a"].CreateApp(ctx, convoy.App{Name: "Acme"})
	require.NoError(t, err)
	_, err = ds["a"].AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL, Ordered: true})
	require.NoError(t, err)
	var dls []*convoy.Delivery
	for i := range n { // one Send after the other, through both processes
		res, err := ds[[]string{"a", "b"}[i%2]].Send(ctx, app.ID, convoy.Event{Type: "counter.moved", Data: json.RawMessage(strconv.Itoa(i))})
		require.NoError(t, err)
		require.Len(t, res.Deliveries, 1)
		dls = append(dls, res.Deliveries[0])
	}
	waitStatus := func(id string, st convoy.DeliveryStatus) {
		t.Helper()
		require.Eventually(t, func() bool {
			got, err := a.GetDelivery(ctx, id)
			require.NoError(t, err)
			return got.Status == st
		}, 10*time.Second, 5*time.Millisecond, "delivery never reached %s", st)
	}
	requireWaiting := func(rest []*convoy.Delivery) {
		t.Helper()
		for _, dl := range rest {
			got, err := a.GetDelivery(ctx, dl.ID)
			require.NoError(t, err)
			require.Equal(t, convoy.DeliveryScheduled, got.Status, "delivery %s went ahead of an earlier one", dl.ID)
		}
	}

	sentBy := map[string]int{}
	for i := 0; i < n; i++ {
		h := next()
		require.Equal(t, i, h.n, "arrival order")
		sentBy[h.process]++
		switch i {
		case 4: // fails once: the rest wait for its retry, a minute later
			h.reply <- http.StatusInternalServerError
			waitStatus(dls[4].ID, convoy.DeliveryRetry)
			requireWaiting(dls[5:])
			clk.Advance(time.Minute)
			h = next()
			require.Equal(t, 4, h.n, "the retry comes before the later events")
		case 8: // the process delivering it dies before it can record
			dead = h.process
			procs[dead].die()
			h.reply <- http.StatusOK
			require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return inFlight == 0 }, 10*time.Second, 5*time.Millisecond)
			requireWaiting(dls[9:])
			clk.Advance(2 * time.Minute) // its lease expires
			h = next()
			require.Equal(t, 8, h.n, "the dead process's event comes first")
			require.NotEqual(t, dead, h.process)
		}
		h.reply <- http.StatusOK
	}
	for _, dl := range dls {
		waitStatus(dl.ID, convoy.DeliverySuccess)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, most, "requests to the ordered endpoint at once")
	t.Logf("requests by process: %v", sentBy)
}
