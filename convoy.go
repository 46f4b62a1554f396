// Package convoy sends webhooks reliably from inside a Go service.
//
// # Overview
//
// A service imports convoy, registers apps (its customers) and their
// endpoints, and calls [Dispatcher.Send]. The dispatcher persists the event
// and one [Delivery] per matching endpoint in a single store transaction,
// returns, and delivers from an in-process pool of workers: it signs each
// request, POSTs it, records every [Attempt], retries failures on a
// schedule, marks endpoints that keep failing as inactive (dead), keeps the
// events that would have gone to them as Discarded, and re-sends them on
// request once the endpoint is back. There is no server to run: storage is
// a [Store], in memory (store/memory), in one bbolt file (store/bolt), or in
// a PostgreSQL database shared by several replicas (store/postgres, its own
// module).
//
// # Lifecycle
//
//	st, _ := bolt.Open("webhooks.db", nil)
//	d, _ := convoy.New(convoy.Config{Store: st})
//	_ = d.Start(ctx)
//	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
//	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://acme.example/hooks"})
//	_, _ = d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: data})
//	_ = d.Close(ctx) // stops claiming, lets in-flight attempts finish
//	_ = st.Close()
//
// # Guarantees
//
// Delivery is at least once: an event that Send accepted is delivered, or
// its delivery ends Failure or Discarded, across crashes and restarts. A
// crash mid-attempt can deliver twice, never zero times; receivers
// deduplicate on the X-Convoy-Delivery-ID (or webhook-id) header. There is
// no ordering promise between events, unless their endpoint is ordered
// (see Ordered delivery below). Claimed work is leased: if a process
// dies, its leases expire and another dispatcher on the same store takes
// the work over; a stale worker cannot overwrite the newer result
// ([ErrLeaseLost]).
//
// # Ordered delivery
//
// An endpoint with [Endpoint].Ordered set gets its events one at a time,
// in Send order: a delivery is not attempted while an earlier one to the
// endpoint is pending (Scheduled, Processing or Retry). Use it for a
// receiver that applies what it gets as state changes and cannot tell an
// old event from a new one (created, updated, cancelled). When the
// receiver can reorder, or skip what is older than what it has (a
// sequence number or timestamp in the payload does it), leave it off: it
// costs throughput and makes one failing event hold back the rest.
//
// The cost is head-of-line blocking. With one request in flight, the
// endpoint gets at most one delivery per round trip, whatever Workers and
// PerEndpoint allow: each costs the receiver's time plus a claim and a
// record. To a receiver answering in about 1 ms, BenchmarkOrderedDelivery
// (32 workers, a shared 2-core machine) measured about 720 deliveries/s
// ordered against 6,300/s unordered on the memory store (0.11×), and 370/s
// against 4,800/s on bolt (0.08×; there the claim and the record are each a
// commit to disk); under load the ratios ranged from 0.08 to 0.16. About a
// tenth, then, and less the faster the receiver. And while the earliest
// delivery waits for a
// retry, which can take hours with the default schedule, the later ones
// wait too, though they are due. Other endpoints are not held back: the
// queue behind an ordered endpoint's head costs the stores one entry of
// their due index, and a Send to an idle ordered endpoint still goes
// straight to a worker.
//
// A delivery that ends in Failure (its retries exhausted, or given up
// after MaxClaims claims without an attempt) or Discarded is no longer
// pending, and the next one goes: the order of the others is kept, with
// that event missing. That is the policy, rather than holding the queue
// until someone intervenes, because the dead-endpoint policy
// (Config.DeadEndpoint) already decides when failures mean the receiver is
// down: then the endpoint goes inactive and the rest of its queue is
// Discarded in order, ready to be re-sent in order when the endpoint is
// back ([Dispatcher.ResendEndpoint]). A re-sent delivery takes its place
// by Send order again: it goes once the delivery in flight is over, before
// the pending ones sent after it, and so after those delivered while it
// was failed, out of order for them. The same holds for a Send whose
// commit lands after a later Send's delivery was handed out.
//
// Send order is the order of the deliveries' IDs: time-ordered UUIDs
// ([NewID]) drawn when Send begins, strictly increasing within a process.
// Two Sends of one process, the second made after the first returned, are
// delivered in that order; concurrent Sends have no order between them.
// Across processes the IDs follow the processes' clocks (to the
// millisecond), so Sends from different processes closer together than
// the skew between their clocks may go in either order.
//
// The order lives in the store, so it survives crashes and spans
// processes. A process that dies mid-attempt leaves its delivery
// Processing: nothing else goes to the endpoint until the lease ends
// (Config.Lease), and then that delivery goes first, again (deduplicate
// on the delivery ID). Dispatchers sharing a store (store/postgres, any
// number of processes) keep one delivery in flight between them. Turning
// Ordered on holds the queue back from the next claim on, behind any
// delivery still in flight; turning it off releases the queue at once.
//
// # Stores
//
// [Store] is the one storage contract, defined here and implemented by
// store/memory (tests, or queues you may lose on exit), store/bolt (one
// file, group commit, a due-time index so claiming never scans the
// backlog) and store/postgres (many processes, one queue: FOR UPDATE SKIP
// LOCKED claims, LISTEN/NOTIFY wake-ups). store/storetest is the
// conformance suite all of them pass.
//
// # Sending inside your transaction
//
// [SendTx] writes the event and its deliveries in a transaction of the
// caller's (a pgx.Tx on store/postgres, a *bbolt.Tx on store/bolt), so the
// webhook goes out if and only if the caller's own writes commit: an
// outbox without an outbox table. The root package imports no driver; a
// store offers it through the [TxInserter] capability.
//
// # Reading the history
//
// [Dispatcher.ListEvents], [Dispatcher.ListDeliveries] and
// [Dispatcher.ListAttempts] list newest first, each page one indexed store
// query; [Dispatcher.LastAttempt] is the latest try of a delivery.
// [Dispatcher.Stats] adds the recent success rate per endpoint. Tests drive
// time with convoytest.Clock.
//
// # Flow control
//
// Config.PerEndpoint bounds the attempts in flight to one endpoint.
// [Endpoint].RateLimit bounds how fast they start ([RateLimit]);
// Config.Adaptive adapts each endpoint's in-flight limit to its receiver
// ([AdaptiveConcurrency]); Config.Breaker pauses endpoints that keep
// failing ([CircuitBreaker]). Work an endpoint may not receive yet is not
// claimed: it waits in the queue without holding a worker or a lease, and
// other endpoints are not slowed. [Dispatcher.EndpointFlow] and
// Stats.Flow show what each endpoint is allowed.
//
// # Telemetry
//
// Config.Observer is told of every Send, attempt and recorded outcome,
// inline and without loss ([Observer]); the otelconvoy and promconvoy
// modules turn that into OpenTelemetry metrics and traces and into
// Prometheus metrics. The trace context of a Send is stored with its
// event ([Event].TraceParent), so attempts made later, by any process, are
// linked to it. Config.WrapTransport instruments the HTTP client around
// the SSRF guard, which stays underneath.
//
// # Signing
//
// Every request is signed with the live secrets of its endpoint (or app):
// Convoy advanced (the default, "t=…,v1=…" in X-Convoy-Signature), Convoy
// simple, or Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature), with any of twelve hash functions for the Convoy
// schemes. [Verifier] and the Verify functions check them on the receiving
// side.
//
// # Safety
//
// Outbound connections go through an SSRF guard that refuses loopback,
// private, link-local and other special addresses at connect time, unless
// Config.AllowNetworks lists them. Redirects and protocol switches are not
// followed, response bodies and headers are read up to a bound and within
// Config.Timeout, and bad input is refused with typed errors before
// anything is stored.
package convoy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy/internal/ssrf"
)

// Version is the library version, sent in the User-Agent header.
const Version = "0.1.0"

// UserAgent is the User-Agent of every request the dispatcher sends.
const UserAgent = "convoy/" + Version + " (+https://github.com/convoykit/convoy)"

// Config configures a Dispatcher. The zero value of every field but Store
// means its documented default.
type Config struct {
	// Store persists everything and is the queue. Required.
	Store Store

	// Workers is the size of the delivery worker pool: how many attempts
	// run at once. Default 32.
	Workers int
	// PerEndpoint caps the attempts in flight to one endpoint, so a slow
	// endpoint holds at most that share of the pool. Default Workers/4,
	// at least 1.
	PerEndpoint int

	// HTTPClient sends the requests. Default: a client on a transport that
	// enforces the SSRF guard, with dial and TLS timeouts of 5 s and a
	// 64 KiB response header limit. A client you supply is used as is for
	// its Transport (so the SSRF guard is then yours to provide), except
	// that redirects are never followed, Timeout applies and response
	// headers over 64 KiB fail the attempt. Timeout bounds the body read
	// whatever the transport does; the wait for the response header ends
	// at Timeout only if the transport honours the request's context, as
	// http.Transport does.
	HTTPClient *http.Client
	// Timeout bounds one attempt, from dial to the last byte read. Default
	// 15 s. A 1xx response returned as final (101 Switching Protocols) or
	// a response that hands the connection over ends the attempt at once,
	// as a failure.
	Timeout time.Duration
	// Lease is how long a claimed delivery is reserved for its worker;
	// after a crash, deliveries are claimed again once their lease ends.
	// Default Timeout + 15 s; it must exceed Timeout.
	Lease time.Duration

	// Retry decides when failed deliveries are tried again. Default
	// StandardWebhooksRetry(): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
	// 20 h, 24 h, ±20%. Endpoint.Retry overrides it per endpoint.
	Retry RetryStrategy
	// MaxRetryAfter bounds how long a Retry-After header on a 429 or 503
	// response can push the next attempt. Default 1 h.
	MaxRetryAfter time.Duration
	// DeadEndpoint decides when a failing endpoint becomes inactive.
	// Default DeadOnExhaustedDelivery{} (the seed's rule).
	DeadEndpoint DeadEndpointPolicy
	// MaxClaims ends a delivery in Failure when it has been claimed this
	// many times without an attempt being recorded (its worker keeps
	// crashing). Default 5.
	MaxClaims int

	// Signer signs every request. Default DefaultSigner().
	Signer Signer

	// Logger receives structured logs. Default slog.Default(). Secrets and
	// URL credentials are never logged.
	Logger *slog.Logger

	// MaxResponseBytes is how much of a response body is kept in the
	// attempt record. Default 50 KiB. The rest is read and discarded up to
	// a further 64 KiB (to reuse the connection), then the connection is
	// dropped.
	MaxResponseBytes int
	// MaxPayloadBytes bounds event data. Default 1 MiB.
	MaxPayloadBytes int

	// AllowNetworks lists networks the SSRF guard lets through although
	// they are loopback, private or otherwise special, e.g.
	// netip.MustParsePrefix("127.0.0.1/32") for a local receiver in tests.
	// Default none.
	AllowNetworks []netip.Prefix
	// HTTPSOnly refuses endpoint URLs that are not https.
	HTTPSOnly bool
	// Resolver resolves endpoint host names for the guarded dialer.
	// Default net.DefaultResolver.
	Resolver Resolver

	// PollInterval is the longest the scheduler sleeps without looking at
	// the store, so work added by another process or a lease that expired
	// is noticed. Default 1 s.
	PollInterval time.Duration
	// Clock tells the time; default the system clock. Tests inject a fake
	// (convoytest.NewClock).
	Clock Clock

	// Retention, when positive, deletes events (with their deliveries and
	// attempts) once they are older than this, in the background, in
	// short batches that never hold up Sends for long; events with a
	// delivery still in progress are kept until it ends. Default 0: keep
	// everything (call DeleteEventsBefore yourself).
	Retention time.Duration
	// StatsWindow is the span of the recent activity that Stats reports
	// per endpoint (attempts, failures, success rate). Default 5 min.
	StatsWindow time.Duration

	// Adaptive, when set, adapts each endpoint's in-flight limit to how
	// its receiver copes, between 1 and PerEndpoint (see
	// AdaptiveConcurrency). Off by default: the limit is PerEndpoint.
	Adaptive *AdaptiveConcurrency
	// Breaker, when set, stops attempting endpoints that fail
	// consistently for a cool-down (see CircuitBreaker). Off by default.
	Breaker *CircuitBreaker

	// OnAttempt, when set, is called after every recorded attempt (and
	// after a delivery is Discarded or Abandoned without one).
	//
	// Hooks run on goroutines of their own, never on a worker, one call at
	// a time per hook and in order: a slow hook delays only later calls of
	// the same hook. Once 4096 attempt events are waiting, further ones are
	// dropped and logged (and counted in Stats.HooksDropped) rather than
	// stalling deliveries. A panicking hook is recovered and logged. Close
	// waits for queued calls until its context ends. While the dispatcher
	// is not started, hooks run on the caller's goroutine.
	OnAttempt func(AttemptEvent)
	// OnEndpointStatus, when set, is called after every endpoint status
	// change, with the reason: retries exhausted, 410 Gone, recovered,
	// re-sent, or set by hand. This is where to tell the app's
	// SupportEmail that its endpoint died. It runs like OnAttempt but on a
	// queue of its own that never drops an event, so a flood of attempt
	// events cannot crowd a status change out.
	OnEndpointStatus func(EndpointStatusEvent)

	// Observer, when set, is told of every Send and every attempt, inline
	// and without loss, for metrics and traces (see Observer; the
	// otelconvoy and promconvoy modules implement it). Its methods must
	// be quick: they run on the goroutines doing the work. Default none.
	Observer Observer
	// WrapTransport, when set, wraps the transport every request goes
	// through: the SSRF-guarded transport (or HTTPClient's Transport,
	// http.DefaultTransport when that is nil), which stays in place
	// underneath, so what it returns cannot reach an address the guard
	// refuses. This is the place to instrument the HTTP client, e.g. with
	// otelhttp.NewTransport (otelconvoy's WrapTransport does). Headers the
	// wrapper adds are sent but not stored in the Attempt. Default none.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Resolver looks up the addresses of a host. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults of Config fields.
const (
	DefaultWorkers          = 32
	DefaultTimeout          = 15 * time.Second
	DefaultMaxRetryAfter    = time.Hour
	DefaultMaxClaims        = 5
	DefaultMaxResponseBytes = 50 << 10
	DefaultMaxPayloadBytes  = 1 << 20
	DefaultPollInterval     = time.Second
	DefaultStatsWindow      = 5 * time.Minute
	responseDrainBytes      = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = max(1, c.Workers/4)
	}
	if c.PerEndpoint > c.Workers {
		c.PerEndpoint = c.Workers
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Lease <= 0 {
		c.Lease = c.Timeout + 15*time.Second
	}
	if c.Retry == nil {
		c.Retry = StandardWebhooksRetry()
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.DeadEndpoint == nil {
		c.DeadEndpoint = DeadOnExhaustedDelivery{}
	}
	if c.MaxClaims <= 0 {
		c.MaxClaims = DefaultMaxClaims
	}
	if c.Signer == nil {
		c.Signer = DefaultSigner()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.StatsWindow <= 0 {
		c.StatsWindow = DefaultStatsWindow
	}
	return c
}

// negative names the first size or duration of c that is below zero, or
// returns "".
func (c Config) negative() string {
	for _, f := range []struct {
		name string
		n    int64
	}{
		{"Workers", int64(c.Workers)}, {"PerEndpoint", int64(c.PerEndpoint)}, {"MaxClaims", int64(c.MaxClaims)},
		{"MaxResponseBytes", int64(c.MaxResponseBytes)}, {"MaxPayloadBytes", int64(c.MaxPayloadBytes)},
		{"Timeout", int64(c.Timeout)}, {"Lease", int64(c.Lease)}, {"MaxRetryAfter", int64(c.MaxRetryAfter)},
		{"PollInterval", int64(c.PollInterval)}, {"Retention", int64(c.Retention)}, {"StatsWindow", int64(c.StatsWindow)},
	} {
		if f.n < 0 {
			return f.name
		}
	}
	return ""
}

func (c Config) validate() error {
	if c.Store == nil {
		return invalid(ErrInvalidConfig, "Config.Store", "required")
	}
	if c.Lease <= c.Timeout {
		return invalid(ErrInvalidConfig, "Config.Lease", "must exceed Config.Timeout")
	}
	if c.Adaptive != nil {
		if err := c.Adaptive.validate(); err != nil {
			return err
		}
	}
	if c.Breaker != nil {
		if err := c.Breaker.validate(); err != nil {
			return err
		}
	}
	if err := checkPolicy(c.DeadEndpoint, "Config.DeadEndpoint", DeadAfterFailures.validate); err != nil {
		return err
	}
	if err := checkPolicy(c.Retry, "Config.Retry", RetryPolicy.Validate); err != nil {
		return err
	}

	for _, p := range c.AllowNetworks {
		if !p.IsValid() {
			return invalid(ErrInvalidConfig, "Config.AllowNetworks", "invalid prefix")
		}
	}
	return nil
}

// checkPolicy validates v with check when it is a T or a *T, and refuses a
// nil *T (a typed nil in the interface, which would panic at first use).
// Other types are the user's own policies: nothing to check.
func checkPolicy[T any](v any, field string, check func(T) error) error {
	switch p := v.(type) {
	case T:
		return check(p)
	case *T:
		if p == nil {
			return invalid(ErrInvalidConfig, field, "a nil pointer")
		}
		return check(*p)
	}
	return nil
}

// Dispatcher sends events to endpoints. Create one with New, call Start to
// begin delivering and Close to stop. All methods are safe for concurrent
// use. The management methods (apps, endpoints, queries) work before Start
// and after Close as long as the store is open.
//
// Workers reuse the endpoint and app they read for up to a second; changes
// made through this Dispatcher apply to the next attempt at once, changes
// made by another process on the same store within that second. Retries
// are timed by the Clock to within a millisecond or so; work added to the
// store by another process is noticed within PollInterval.
type Dispatcher struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	clock  Clock
	client *http.Client
	guard  *ssrf.Guard
	owner  string

	wake  chan struct{} // buffered(1): work may be due
	freed chan struct{} // buffered(1): capacity may be free (see freedUp)

	mu       sync.Mutex
	started  bool
	closed   bool
	closing  chan struct{}      // closed when Close has finished
	shut     atomic.Bool        // Close was called: Send refuses new events
	stop     context.CancelFunc // stops the scheduler
	abort    context.CancelFunc // cancels in-flight attempts
	inFlight map[string]int     // endpoint ID → attempts running or reserved by Send
	busy     int                // workers busy or reserved by Send
	ready    chan job           // deliveries Send leased, for the workers
	sending  sync.WaitGroup     // Sends holding reservations
	done     chan struct{}      // closed when the scheduler and workers are gone
	hooks    *hookRunner        // set while running
	counts   counters
	cache    settingsCache
	recent   *activity       // attempts per endpoint over StatsWindow
	flow     *flowState      // rate limits, adaptive limits, breakers
	storeBad recordFailing   // records failing: claiming paused
	obs      *observer       // Config.Observer; nil when none
	guarded  *http.Transport // the SSRF-guarded transport, unless HTTPClient is set
	// ownTransport: attempts go through guarded itself, unwrapped, which
	// ends a body read when the attempt's context ends.
	ownTransport bool
	// backlog is set while due work is likely waiting in the store: the
	// last claim leased every worker it asked for, or a Send's reserved
	// workers got no lease (the store leases nothing for a new event while
	// older work is due). Send then reserves no workers: its lease would
	// be refused, and the reservation would only keep the scheduler from
	// claiming the waiting work for them meanwhile.
	backlog atomic.Bool
}

// New returns a Dispatcher for cfg, or an error wrapping ErrInvalidConfig.
// A zero size or duration means its default; a negative one is refused.
// It starts nothing: call Start to deliver.
func New(cfg Config) (*Dispatcher, error) {
	if f := cfg.negative(); f != "" {
		// Zero means the default; a negative size or duration is a
		// mistake, not a request for the default.
		return nil, invalid(ErrInvalidConfig, "Config."+f, "negative")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		guard:    ssrf.New(cfg.AllowNetworks),
		owner:    NewID(),
		wake:     make(chan struct{}, 1),
		freed:    make(chan struct{}, 1),
		closing:  make(chan struct{}),
		inFlight: make(map[string]int),
		ready:    make(chan job, cfg.Workers),
	}
	d.obs = newObserver(cfg.Observer, cfg.Logger)
	d.recent = newActivity(cfg.StatsWindow)
	d.flow = newFlowState(cfg)
	var err error
	if d.client, err = d.newHTTPClient(); err != nil {
		return nil, err
	}
	return d, nil
}

// newHTTPClient builds the client of the attempts, with Config.WrapTransport
// around its transport.
func (d *Dispatcher) newHTTPClient() (*http.Client, error) {
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	wrap := func(rt http.RoundTripper) (http.RoundTripper, error) {
		if d.cfg.WrapTransport == nil {
			return rt, nil
		}
		if rt = d.cfg.WrapTransport(rt); rt == nil {
			return nil, invalid(ErrInvalidConfig, "Config.WrapTransport", "returned nil")
		}
		return rt, nil
	}
	if c := d.cfg.HTTPClient; c != nil {
		cc := *c
		cc.CheckRedirect = noRedirect
		cc.Timeout = 0 // each attempt's context carries Timeout
		if d.cfg.WrapTransport != nil {
			base := cc.Transport
			if base == nil {
				base = http.DefaultTransport
			}
			var err error
			if cc.Transport, err = wrap(base); err != nil {
				return nil, err
			}
		}
		return &cc, nil
	}
	tr := ssrf.NewTransport(ssrf.TransportOptions{
		Guard:    d.guard,
		Resolver: d.cfg.Resolver,
		// No ResponseHeaderTimeout: the attempt's context bounds the
		// wait for the header too, and one deadline per attempt is one
		// timer instead of two.
		MaxIdleConnsPerHost: d.cfg.PerEndpoint,
	})
	// Close closes its idle connections whether or not a wrapper passes
	// CloseIdleConnections on.
	d.guarded = tr
	d.ownTransport = d.cfg.WrapTransport == nil
	rt, err := wrap(tr)
	if err != nil {
		return nil, err
	}
	// No Client.Timeout: each attempt's context carries Timeout, from dial
	// to the last byte of the body.
	return &http.Client{Transport: rt, CheckRedirect: noRedirect}, nil
}

// Start begins delivering: it checks that the store answers, then starts
// the scheduler and the worker pool. ctx bounds only the start-up check;
// the dispatcher runs until Close. A second call returns ErrStarted, a
// call after Close ErrClosed.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.started {
		return ErrStarted
	}
	if _, _, err := d.store.NextDue(ctx); err != nil {
		return fmt.Errorf("convoy: start: %w", err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	d.stop, d.abort = stop, abort
	d.started = true
	d.done = make(chan struct{})
	go d.run(runCtx, workCtx)
	d.log.LogAttrs(ctx, slog.LevelInfo, "convoy: dispatcher started",
		slog.String("owner", d.owner), slog.Int("workers", d.cfg.Workers),
		slog.Int("per_endpoint", d.cfg.PerEndpoint))
	return nil
}

// Close stops claiming new work and waits for in-flight attempts to finish
// until ctx ends; attempts still running then are cancelled and their
// deliveries released, to be retried by the next dispatcher. It returns
// when every goroutine it started has exited, with ctx.Err() if it had to
// cancel. From the moment Close is called, Send returns ErrClosed. Close
// does not close the Store. It is safe to call more than once: a call
// while another is running waits for that one to finish (or for its own
// ctx to end).
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		done := d.closing
		d.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.closed = true
	d.shut.Store(true)
	started := d.started
	if started {
		// Claiming stops with closed, under the same lock: a Send that
		// sees closed gives its leases back, and no claim that ends from
		// now on hands them (or anything) to a worker (see schedule).
		d.stop()
	}
	d.mu.Unlock()
	defer close(d.closing)
	if !started {
		return nil
	}
	var err error
	select {
	case <-d.done:
	case <-ctx.Done():
		err = ctx.Err()
		d.abort()
		<-d.done
	}
	d.abort()
	d.client.CloseIdleConnections()
	if d.guarded != nil {
		d.guarded.CloseIdleConnections()
	}
	d.log.LogAttrs(context.Background(), slog.LevelInfo, "convoy: dispatcher closed", slog.String("owner", d.owner))
	return err
}

// isClosed reports whether Close has been called.
func (d *Dispatcher) isClosed() bool { return d.shut.Load() }

// notify wakes the scheduler without blocking: work may be due.
func (d *Dispatcher) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// freedUp tells the scheduler, without blocking, that capacity may be
// free: a worker finished, or a record landed and its lease no longer
// counts against its endpoint's cap. Unlike notify it says nothing new
// is due, so a scheduler that knows nothing is due sleeps on: at light
// load, where Send leases its own deliveries, finished attempts then
// cost no claim that would find nothing.
func (d *Dispatcher) freedUp() {
	select {
	case d.freed <- struct{}{}:
	default:
	}
}
