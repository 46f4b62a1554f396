// Package sim is convoy's deterministic simulation: one seed fixes a whole
// run of several dispatchers on one store, with sends, receivers that
// fail in every way, store faults and crashes, and the rules every
// Dispatcher must keep are checked after every step. It is how
// FoundationDB and TigerBeetle test themselves: bugs in queues hide in
// combinations (a retry coming due while the endpoint dies while the
// store fails a write while a process crashes), and a simulation visits
// thousands of combinations per CI run, then replays any failing one
// exactly.
//
// # Running
//
//	go test ./internal/sim                           # 2,000 seeds (300 with -short, 150 with -race)
//	go test ./internal/sim -run 'TestSim$' -seeds=20000 -first=5000
//	go test ./internal/sim -seed=1234                # replay one seed (-v: print its whole trace)
//	go test ./internal/sim -seed=1234 -keep=3,7,9    # replay its shrunk scenario
//	go test ./internal/sim -run TestSoak -soak=10m -timeout=0   # fresh seeds for ten minutes
//	go test ./internal/sim -backend=bolt             # every seed on bolt
//
// A failing seed prints the rule it broke, the seed, a shrunk scenario
// (the steps that still make it fail) with the -keep flag to replay it,
// and a minimal trace: the steps, and the lines about the deliveries and
// endpoints concerned (-full prints all of it). TestDeterminism runs
// seeds twice and requires the same trace hash; TestRegressions replays
// the scenarios that found bugs, kept as the Go literals a failing seed
// prints (so they survive changes to Generate); TestSimFinds proves the
// checks catch stores with known bugs.
//
// # One seed, one run
//
// Each run executes in a testing/synctest bubble: time is fake and moves
// only when every goroutine of the run is blocked, so retries hours apart
// take microseconds and a timeout happens at the same instant every time.
// The dispatchers use the system clock (the bubble's); each one's timers
// are late by a few microseconds of its own, so that two dispatchers
// seldom wake at the same instant. Goroutines woken at one instant race,
// so every store call and every wake-up of a request in the fake network
// takes a ticket from a sequencer, named after what it is ("p1 Record
// d3.2#2 lease 1"), and the sequencer lets them go one at a time in name
// order, each time everything else is blocked (synctest.Wait). Receivers
// decide their answer from the seed and the request, never from arrival
// order. IDs are random UUIDs, so the trace names everything by the order
// the simulation made it: s7 is the seventh send, e7 its event, d7.2 its
// delivery to ep2, p3 the third dispatcher started. The trace is then the
// seed's alone, and so is its SHA-256.
//
// # What a run does
//
// Generate turns a seed into a Scenario: the dispatchers' settings
// (workers, per-endpoint cap, timeout, lease, retry policy without
// jitter, MaxRetryAfter, MaxClaims, the dead-endpoint rule), apps and
// endpoints, and 40 to 120 steps drawn from:
//
//   - sends, with and without idempotency keys, and repeats of a key;
//   - receivers turning to 200, 500, 410 Gone, 429 or 503 with
//     Retry-After (one past every MaxRetryAfter), 302, refused
//     connections, hangs until the attempt's timeout, bodies sent slowly
//     (within or past the timeout), or a seeded share of failures;
//   - store faults for a while, in one dispatcher or all: Claim, Record,
//     Release, NextDue, the loads, InsertEvent, ListEndpoints or Requeue
//     failing before reaching the store, failing after it (the write
//     landed, the caller is told it did not), or stalling before or
//     after;
//   - crashes: a dispatcher dropped without Close. Its store wrapper and
//     network refuse everything from that instant (nothing it does lands),
//     then it is closed out of band so that no goroutine outlives the
//     test. With the memory store the store outlives it, as a database
//     shared by processes; with bolt the crash takes the whole process,
//     every dispatcher, and the file is opened again;
//   - new dispatchers (up to three at once on one store), and graceful
//     stops with some grace for in-flight attempts;
//   - endpoint status changes, re-sends of one delivery or of an
//     endpoint's Discarded (and Failure) deliveries, endpoint updates (URL,
//     event filter, retry policy) and removals, new endpoints;
//   - the clock moving on, by a millisecond to ten minutes;
//   - flow control: about a third of the endpoints ordered, a third rate
//     limited, Config.Adaptive and Config.Breaker each in about a third
//     of the seeds, and updates turning Ordered on and off. In about
//     three seeds in four the store wrapper forwards InsertEventClaim,
//     so Send's fast path (leasing a fresh event's deliveries in its own
//     transaction) runs beside Claim, with the same faults.
//
// Then the run drains: faults stop, receivers answer 200, every delivery
// must end; everything Failure or Discarded is re-sent and must succeed;
// the dispatchers are closed and every request accounted for.
//
// # What is checked
//
// The ledger (ledger.go) keeps the simulation's own account: the state
// each delivery should be in, every lease handed out, every request the
// receivers saw. The store wrapper reports each call to it as the call
// lands, and after every step the store is compared with it at rest:
//
//   - No acknowledged Send is lost: every delivery the store was seen
//     storing is there, in the state the ledger expects, until its
//     endpoint is removed; each ends Success, Failure or Discarded once
//     the run drains, and a Failure or Discarded one succeeds once
//     re-sent. A Send returns one delivery per endpoint whose filter
//     takes the event, Discarded for an inactive endpoint; a repeated
//     idempotency key returns the first event.
//   - No delivery is claimed while another lease on it is valid, and no
//     attempt starts unless the dispatcher holds the current lease with
//     at least Timeout of it left, so two attempts never run under valid
//     leases at once. A record under a lease that was taken over never
//     lands (a stale lease cannot overwrite a newer result), and a record
//     under the lease held is never refused (no result is lost).
//   - Attempts recorded are the requests the receivers saw, less those
//     cut by a crash, refused for a lost lease, cut short by Close (and
//     released), or of a removed endpoint: each recorded attempt matches
//     a request, numbers run 1..n, and in the end every request is one or
//     the other.
//   - Each transition follows the answer: Success exactly when a 2xx was
//     read to its end; Retry only while the strategy has retries left,
//     never due sooner than the strategy's wait or a Retry-After (bounded
//     by MaxRetryAfter) allows, and never claimed before it is due;
//     Failure only when retries are exhausted or on 410; Discarded only
//     for an endpoint that was inactive; Failure without an attempt only
//     past MaxClaims.
//   - Endpoint status follows the rules: 410 kills at once, a success
//     revives a pending endpoint, an exhausted delivery kills a pending
//     one, the DeadEndpoint policy decides the rest, nothing else moves
//     it; the store's health counters agree; every change is reported to
//     OnEndpointStatus.
//   - Stats counts what the listings show: deliveries and endpoints by
//     status, due work, retries scheduled.
//   - Flow control (flowcheck.go): an ordered endpoint is leased only
//     its head (its pending delivery with the lowest ID), never while
//     another of its deliveries holds a valid lease, and never gets two
//     requests at once, across dispatchers; a rate-limited endpoint gets
//     from each dispatcher at most Burst + ⌈PerSecond × d⌉ requests in
//     any span d; no dispatcher has more than PerEndpoint in flight to
//     one endpoint, and its adaptive limit stays within [1, PerEndpoint];
//     no request goes to an endpoint whose circuit was open when it was
//     claimed, and at most one while it is half-open.
//   - Close finishes or releases every claim it holds, and no goroutine
//     of any dispatcher, crashed or not, is left when the run ends
//     (synctest fails a run that leaves one blocked; goleak checks the
//     package).
//
// The harness runs the memory and bolt stores. internal/simpg, a module
// of its own (so the root never requires pgx), runs the same scenarios on
// store/postgres through Backend, with two or three dispatchers at once
// on one schema; every instant of a run is a whole microsecond, so
// PostgreSQL keeps the times exactly.
package sim
