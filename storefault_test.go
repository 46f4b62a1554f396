package convoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/internal/testutil/tally"
)

// errInjected is the error faultyStore returns for the calls it fails.
var errInjected = errors.New("injected store fault")

// fault says how often one Store method fails: Before, the call fails
// without reaching the store (nothing changed); After, the call goes
// through and its result is lost (the write happened, the caller sees an
// error, as when a context ends while a commit completes).
type fault struct{ Before, After float64 }

// faultyStore wraps a Store and fails the methods listed in faults, at
// random from a seeded source, while on. It counts what it injected.
type faultyStore struct {
	convoy.Store

	on     atomic.Bool
	mu     sync.Mutex
	rng    *rand.Rand
	faults map[string]fault
	// next fails the next calls of a method, whether on or not: Before
	// and After count calls.
	next map[string]fault
	// injected counts the faults returned, by method.
	injected map[string]int
}

func newFaultyStore(st convoy.Store, seed uint64, faults map[string]fault) *faultyStore {
	return &faultyStore{
		Store: st, rng: rand.New(rand.NewPCG(seed, 0)), faults: faults,
		next: make(map[string]fault), injected: make(map[string]int),
	}
}

// failNext makes the next before calls of method fail without reaching the
// store, then the next after calls fail after it.
func (s *faultyStore) failNext(method string, before, after int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[method] = fault{Before: float64(before), After: float64(after)}
}

// roll decides the fate of one call of method: fail before, fail after, or
// pass.
func (s *faultyStore) roll(method string) (before, after bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.next[method]; n.Before > 0 || n.After > 0 {
		s.injected[method]++
		if n.Before > 0 {
			n.Before--
			s.next[method] = n
			return true, false
		}
		n.After--
		s.next[method] = n
		return false, true
	}
	if !s.on.Load() {
		return false, false
	}
	f := s.faults[method]
	p := s.rng.Float64()
	switch {
	case p < f.Before:
		s.injected[method]++
		return true, false
	case p < f.Before+f.After:
		s.injected[method]++
		return false, true
	}
	return false, false
}

// counts returns how many faults were injected, by method.
func (s *faultyStore) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.injected)
}

func (s *faultyStore) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injected[method]
}

func injectErr(method string) error { return fmt.Errorf("%s: %w", method, errInjected) }

func (s *faultyStore) InsertEvent(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery) (convoy.InsertResult, error) {
	before, after := s.roll("InsertEvent")
	if before {
		return convoy.InsertResult{}, injectErr("InsertEvent")
	}
	res, err := s.Store.InsertEvent(ctx, ev, ds)
	if after && err == nil {
		return convoy.InsertResult{}, injectErr("InsertEvent")
	}
	return res, err
}

func (s *faultyStore) ListEndpoints(ctx context.Context, appID string, p convoy.Page) ([]*convoy.Endpoint, string, error) {
	if before, _ := s.roll("ListEndpoints"); before {
		return nil, "", injectErr("ListEndpoints")
	}
	return s.Store.ListEndpoints(ctx, appID, p)
}

func (s *faultyStore) Claim(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	before, after := s.roll("Claim")
	if before {
		return nil, injectErr("Claim")
	}
	ds, err := s.Store.Claim(ctx, r)
	if after && err == nil {
		return nil, injectErr("Claim") // leased, and nobody knows
	}
	return ds, err
}

func (s *faultyStore) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	before, after := s.roll("Record")
	if before {
		return convoy.RecordResult{}, injectErr("Record")
	}
	res, err := s.Store.Record(ctx, t)
	if after && err == nil {
		return convoy.RecordResult{}, injectErr("Record")
	}
	return res, err
}

func (s *faultyStore) Release(ctx context.Context, id, lease string) error {
	before, after := s.roll("Release")
	if before {
		return injectErr("Release")
	}
	err := s.Store.Release(ctx, id, lease)
	if after && err == nil {
		return injectErr("Release")
	}
	return err
}

func (s *faultyStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	if before, _ := s.roll("NextDue"); before {
		return time.Time{}, false, injectErr("NextDue")
	}
	return s.Store.NextDue(ctx)
}

func (s *faultyStore) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	if before, _ := s.roll("GetEndpoint"); before {
		return nil, injectErr("GetEndpoint")
	}
	return s.Store.GetEndpoint(ctx, id)
}

func (s *faultyStore) GetApp(ctx context.Context, id string) (*convoy.App, error) {
	if before, _ := s.roll("GetApp"); before {
		return nil, injectErr("GetApp")
	}
	return s.Store.GetApp(ctx, id)
}

func (s *faultyStore) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	if before, _ := s.roll("GetEvent"); before {
		return nil, injectErr("GetEvent")
	}
	return s.Store.GetEvent(ctx, id)
}

// logCounter is a slog.Handler that counts records by message and passes
// them on.
type logCounter struct {
	slog.Handler
	mu *sync.Mutex
	n  map[string]int
}

func newLogCounter(h slog.Handler) *logCounter {
	return &logCounter{Handler: h, mu: &sync.Mutex{}, n: make(map[string]int)}
}

func (c *logCounter) Handle(ctx context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Message]++
	c.mu.Unlock()
	return c.Handler.Handle(ctx, r)
}

func (c *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCounter{Handler: c.Handler.WithAttrs(as), mu: c.mu, n: c.n}
}

func (c *logCounter) WithGroup(g string) slog.Handler {
	return &logCounter{Handler: c.Handler.WithGroup(g), mu: c.mu, n: c.n}
}

func (c *logCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// storeFaults are the faults of TestStoreFaultsLoseNothing: every call the
// dispatcher makes to send, claim, load, record and release fails now and
// then, some after having done their work.
var storeFaults = map[string]fault{
	"InsertEvent":   {Before: 0.10, After: 0.05},
	"ListEndpoints": {Before: 0.05},
	"Claim":         {Before: 0.15, After: 0.05},
	"Record":        {Before: 0.20, After: 0.05},
	"Release":       {Before: 0.50, After: 0.20},
	"NextDue":       {Before: 0.30},
	"GetEndpoint":   {Before: 0.05},
	"GetApp":        {Before: 0.05},
	"GetEvent":      {Before: 0.05},
}

// TestStoreFaultsLoseNothing runs a dispatcher on a store that fails every
// kind of call some of the time, closes it halfway with attempts in flight
// (so releases fail too) and starts another on the same store. Every event
// whose Send returned nil must be received at least once and end Success.
func TestStoreFaultsLoseNothing(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			const events = 150 // per half
			ctx := context.Background()
			st := sk.open(t)
			fs := newFaultyStore(st, 42, storeFaults)
			logs := newLogCounter(testutil.Logger(t).Handler())
			clk := schedClock{testutil.NewSchedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
			cfg := convoy.Config{
				Store: fs, Workers: 8, PerEndpoint: 8, Timeout: 5 * time.Second,
				Retry:  convoy.LinearRetry(2*time.Second, 1000),
				Logger: slog.New(logs), AllowNetworks: loopback, Clock: clk,
			}

			received := tally.NewReceived()
			var hang atomic.Bool
			hanging := make(chan struct{}, 100)
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(7, 7))
			rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if hang.Load() {
					hanging <- struct{}{}
					<-r.Context().Done() // until Close gives up on it
					return
				}
				mu.Lock()
				fail := rng.Float64() < 0.15
				mu.Unlock()
				if fail {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				received.Add(r.Header)
			})

			d1, err := convoy.New(cfg)
			require.NoError(t, err)
			require.NoError(t, d1.Start(ctx))
			t.Cleanup(func() { _ = d1.Close(ctx) }) // when the test fails halfway
			app, err := d1.CreateApp(ctx, convoy.App{Name: "faulty"})
			require.NoError(t, err)
			_, err = d1.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL})
			require.NoError(t, err)

			var ackMu sync.Mutex
			var acked []string
			var refused atomic.Int64
			send := func(d *convoy.Dispatcher, from, n int) {
				var wg sync.WaitGroup
				for g := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := from + g; i < from+n; i += 4 {
							ev, err := d.Send(ctx, app.ID, convoy.Event{Type: "x", Data: json.RawMessage(strconv.Itoa(i))})
							if err != nil {
								// Not acknowledged: the caller knows.
								refused.Add(1)
								continue
							}
							ackMu.Lock()
							acked = append(acked, ev.Event.ID)
							ackMu.Unlock()
						}
					}()
				}
				wg.Wait()
			}
			// drive moves the fake clock (retries come due, lost leases
			// expire) until every stored delivery is final. It moves it
			// only while no attempt is in flight: a jump in the middle of
			// one would leave it less of its lease than Timeout, and the
			// worker rightly gives such a delivery back unattempted, so on
			// a slow machine a clock moving under every attempt would never
			// let one through.
			drive := func(d *convoy.Dispatcher) {
				require.Eventually(t, func() bool {
					if s, err := d.Stats(ctx); err == nil && s.InFlight == 0 {
						clk.Advance(2 * time.Second)
					}
					f, err := tally.Walk(ctx, st)
					require.NoError(t, err)
					return len(f.NotFinal()) == 0
				}, 60*time.Second, 5*time.Millisecond, "deliveries never settled")
			}

			fs.on.Store(true)
			send(d1, 0, events)
			drive(d1)

			// Close with attempts in flight: they are cut short and
			// released, and some releases fail. Send until every worker is
			// in an attempt: a claim that fails after leasing (an injected
			// fault) strands its deliveries until their leases expire,
			// which they do not while the clock stands still.
			hang.Store(true)
			next := events
			more := time.NewTicker(50 * time.Millisecond)
			defer more.Stop()
			deadline := time.After(10 * time.Second)
			send(d1, next, 4)
			next += 4
			for inAttempt := 0; inAttempt < cfg.Workers; {
				select {
				case <-hanging:
					inAttempt++
				case <-more.C:
					if next < events+200 {
						send(d1, next, 4)
						next += 4
					}
				case <-deadline:
					t.Fatalf("only %d attempts in flight", inAttempt)
				}
			}
			closeCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			require.ErrorIs(t, d1.Close(closeCtx), context.DeadlineExceeded)
			cancel()
			hang.Store(false)

			d2, err := convoy.New(cfg)
			require.NoError(t, err)
			// Start checks the store and reports a failure; try again.
			require.Eventually(t, func() bool { return d2.Start(ctx) == nil }, 10*time.Second, time.Millisecond)
			t.Cleanup(func() { _ = d2.Close(ctx) })
			send(d2, next, events)
			drive(d2)
			fs.on.Store(false)
			require.NoError(t, d2.Close(ctx))
			f, err := tally.Walk(ctx, st)
			require.NoError(t, err)
			require.NoError(t, st.Close())
			res := tally.Count(acked, received, f)
			t.Logf("store faults (%s): %s refused=%d injected=%v", sk.name, res, refused.Load(), fs.counts())
			require.Empty(t, res.Lost, "acknowledged events never received")
			require.Empty(t, res.Unsettled, "acknowledged events not delivered")
			require.Empty(t, f.NotFinal())
			require.Equal(t, len(f.Deliveries), f.ByStatus[convoy.DeliverySuccess], "no delivery ends Failure")
			for _, method := range []string{"InsertEvent", "Claim", "Record", "Release", "GetEvent"} {
				require.Positive(t, fs.count(method), "no %s fault was injected", method)
			}
			require.Positive(t, refused.Load(), "some Sends failed")
			for _, msg := range []string{
				"convoy: claim failed, will retry",
				"convoy: attempt results cannot be stored; claiming paused until they can",
				"convoy: release failed; the lease will expire",
			} {
				require.Positive(t, logs.count(msg), "never logged %q", msg)
			}
		})
	}
}

// sfEnv is one dispatcher on a faulty memory store, with one endpoint.
type sfEnv struct {
	st   convoy.Store // the store under the faults, for inspection
	fs   *faultyStore
	clk  schedClock
	logs *logCounter
	cfg  convoy.Config
	d    *convoy.Dispatcher
	app  *convoy.App
	rc   *testutil.Receiver
}

func newSFEnv(t *testing.T) *sfEnv {
	t.Helper()
	e := &sfEnv{st: memoryStore(), clk: schedClock{testutil.NewSchedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}
	e.fs = newFaultyStore(e.st, 1, nil)
	e.logs = newLogCounter(testutil.Logger(t).Handler())
	e.cfg = convoy.Config{
		Store: e.fs, Workers: 4, Timeout: 5 * time.Second, Retry: convoy.LinearRetry(time.Minute, 3),
		Logger: slog.New(e.logs), AllowNetworks: loopback, Clock: e.clk,
	}
	e.d = e.start(t)
	ctx := context.Background()
	var err error
	e.app, err = e.d.CreateApp(ctx, convoy.App{Name: "faulty"})
	require.NoError(t, err)
	e.rc = testutil.NewReceiver(t, nil)
	_, err = e.d.AddEndpoint(ctx, e.app.ID, convoy.Endpoint{URL: e.rc.URL})
	require.NoError(t, err)
	return e
}

// start starts a dispatcher on the env's store, closed when the test ends.
func (e *sfEnv) start(t *testing.T) *convoy.Dispatcher {
	t.Helper()
	d, err := convoy.New(e.cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })
	return d
}

// asleep waits until the scheduler sleeps on the fake clock: its next
// claim is then the one the next Send wakes it for.
func (e *sfEnv) asleep(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return e.clk.Timers() > 0 }, 10*time.Second, time.Millisecond)
}

// send sends one event and returns its delivery.
func (e *sfEnv) send(t *testing.T, d *convoy.Dispatcher) *convoy.Delivery {
	t.Helper()
	ctx := context.Background()
	sent, err := d.Send(ctx, e.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	ds, _, err := e.st.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: sent.Event.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0]
}

// get reads a delivery from under the faults.
func (e *sfEnv) get(t *testing.T, id string) *convoy.Delivery {
	t.Helper()
	dl, err := e.st.GetDelivery(context.Background(), id)
	require.NoError(t, err)
	return dl
}

// final waits until the delivery is final, moving the fake clock by step
// at each look when step is positive (so lost leases expire), and returns
// it with its attempts.
func (e *sfEnv) final(t *testing.T, id string, step time.Duration) (*convoy.Delivery, []*convoy.Attempt) {
	t.Helper()
	var dl *convoy.Delivery
	require.Eventually(t, func() bool {
		if step > 0 {
			e.clk.Advance(step)
		}
		dl = e.get(t, id)
		return dl.Status.Final()
	}, 10*time.Second, 5*time.Millisecond, "delivery never final")
	as, _, err := e.st.ListAttempts(context.Background(), id, convoy.Page{})
	require.NoError(t, err)
	slices.Reverse(as) // oldest first
	return dl, as
}

func TestStoreFaultRecovery(t *testing.T) {
	t.Parallel()
	t.Run("failed loads are retried, not counted as crashed claims", func(t *testing.T) {
		t.Parallel()
		e := newSFEnv(t)
		// More failures in a row than MaxClaims (5) allows claims.
		e.fs.failNext("GetEvent", convoy.DefaultMaxClaims+1, 0)
		dl := e.send(t, e.d)
		got, as := e.final(t, dl.ID, time.Second)
		require.Equal(t, convoy.DeliverySuccess, got.Status, "a store that failed for a moment lost the delivery: %s", got.LastError)
		require.Len(t, as, 1)
		require.Equal(t, 1, e.rc.Count())
		require.Equal(t, convoy.DefaultMaxClaims+1, e.fs.count("GetEvent"))
	})
	t.Run("a failed record is retried until it lands", func(t *testing.T) {
		t.Parallel()
		e := newSFEnv(t)
		e.fs.failNext("Record", 5, 0)
		dl := e.send(t, e.d)
		got, as := e.final(t, dl.ID, 0)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
		require.Len(t, as, 1)
		require.Equal(t, 1, e.rc.Count())
		// The store holds the record before Record returns to the
		// dispatcher, which then clears RecordsFailing: poll for that.
		var s convoy.Stats
		require.Eventually(t, func() bool {
			var err error
			s, err = e.d.Stats(context.Background())
			require.NoError(t, err)
			return !s.RecordsFailing
		}, 10*time.Second, 5*time.Millisecond, "RecordsFailing still set once the record landed")
		require.EqualValues(t, 5, s.RecordErrors)
		require.Equal(t, 1, e.logs.count("convoy: attempt results cannot be stored; claiming paused until they can"), "logged once, not per failure")
	})
	t.Run("a record that never lands: the lease expires and the delivery is attempted again", func(t *testing.T) {
		t.Parallel()
		e := newSFEnv(t)
		e.fs.failNext("Record", 1<<30, 0)
		dl := e.send(t, e.d)
		require.Eventually(t, func() bool { return e.rc.Count() == 1 && e.fs.count("Record") >= 3 }, 10*time.Second, time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, e.d.Close(ctx), context.DeadlineExceeded, "Close gives up on the record")
		got := e.get(t, dl.ID)
		require.Equal(t, convoy.DeliveryProcessing, got.Status, "still leased: nothing was recorded")
		require.Zero(t, got.Attempts)

		e.fs.failNext("Record", 0, 0)
		d2 := e.start(t)
		_ = d2
		got, as := e.final(t, dl.ID, time.Second)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
		require.Len(t, as, 1, "the lost attempt left no record")
		require.Equal(t, 2, e.rc.Count(), "at least once: the receiver got it twice")
		for range 2 {
			req := <-e.rc.Requests
			require.Equal(t, dl.ID, req.Header.Get(convoy.HeaderDeliveryID))
		}
	})
	t.Run("a record that landed but reported failure is not applied twice", func(t *testing.T) {
		t.Parallel()
		e := newSFEnv(t)
		e.fs.failNext("Record", 0, 1)
		dl := e.send(t, e.d)
		got, as := e.final(t, dl.ID, 0)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
		require.Len(t, as, 1)
		require.Equal(t, 1, got.Attempts)
		require.Equal(t, 1, e.rc.Count())
		require.Eventually(t, func() bool { return e.logs.count("convoy: result not recorded: lease lost") == 1 }, 10*time.Second, time.Millisecond)
	})
	t.Run("a claim that leased but reported failure is taken over when the lease ends", func(t *testing.T) {
		t.Parallel()
		e := newSFEnv(t)
		e.asleep(t)
		e.fs.failNext("Claim", 0, 1)
		dl := e.send(t, e.d)
		require.Eventually(t, func() bool { return e.fs.count("Claim") == 1 }, 10*time.Second, time.Millisecond)
		got := e.get(t, dl.ID)
		require.Equal(t, convoy.DeliveryProcessing, got.Status, "leased, with no worker on it")
		require.Equal(t, 1, got.Claims)
		require.Zero(t, e.rc.Count())
		got, as := e.final(t, dl.ID, time.Second)
		require.Equal(t, convoy.DeliverySuccess, got.Status)
		require.Len(t, as, 1)
		require.Equal(t, 1, e.rc.Count())
	})
}
