// Package postgres provides a [convoy.Store] on PostgreSQL (pgx v5), for
// services that run several replicas: any number of processes share one
// queue, and an event can be sent inside the application's own
// transaction (see SendTx below). It is its own Go module, so that the
// convoy module itself never depends on a database driver.
//
//	s, err := postgres.Open(ctx, "postgres://app@db/app", &postgres.Options{Migrate: true})
//	if err != nil { ... }
//	d, err := convoy.New(convoy.Config{Store: s})
//
// [Open] makes (and Close closes) a connection pool; [New] takes a
// *pgxpool.Pool the application already has, and leaves it open. A Store
// is safe for concurrent use.
//
// # Schema and migrations
//
// The tables live in one schema, "convoy" unless [Options].Schema names
// another, so they can sit in the application's database beside its own
// tables: apps, endpoints, endpoint_state, events, deliveries, attempts,
// counts and schema_migrations. The schema is versioned by SQL migrations embedded in
// this package (migrations/NNNN_name.sql). [Store.Migrate] applies those
// a schema lacks, all in one transaction, under a transaction-scoped
// advisory lock: several processes starting at once migrate once, and a
// second run finds nothing to do. Options.Migrate runs it when the Store
// is made; without it New and Open fail with [ErrNotMigrated] on a schema
// that is not up to date. Migrations only add, or replace a function by
// one of the same signature and meaning (versions 4 and 5, the claim), so
// processes of the previous release keep working on a schema a newer one
// migrated.
//
// Tables start empty, and the plans PostgreSQL caches for the store's
// statements while they are nearly so read whole tables until the tables
// are analyzed, which autovacuum does a minute or more later. So the
// store analyzes events, deliveries and attempts itself while they are
// young (when it has inserted 1,000 deliveries, and at every fourfold
// growth to about a million), under the role that owns them, as Migrate
// does; PostgreSQL skips the tables of a role that does not.
//
// Each delivery also leaves dead index entries behind (its claim and its
// record write its row anew), and the claims walk through them until a
// VACUUM removes them: a capped claim took four times as long after 90,000
// deliveries had gone through. Autovacuum waits for a fifth of the table
// to be dead and looks once a minute, so the store vacuums deliveries
// itself, once the statistics count 50,000 dead rows or a sixteenth of
// the live ones, whichever is more (VACUUM with INDEX_CLEANUP ON and
// SKIP_LOCKED, one process at a time under a session advisory lock, on a
// connection it takes out of the pool; after a VACUUM that removed
// nothing it waits, from 10 seconds doubling to 10 minutes). Like
// ANALYZE it needs the role that owns the table. Options.NoVacuum leaves
// the table to autovacuum; set it behind a pooler in transaction mode,
// where a session lock does not hold.
//
// Times are stored as Unix nanoseconds (bigint), so every time reads back
// exactly as written; to_timestamp(created_at / 1e9) shows one. Event
// payloads are bytea, byte for byte as sent.
//
// # Claims, leases and fencing
//
// Claim is one statement, the schema's claim function: it walks the
// partial index deliveries_due, on due_at (next_attempt_at while
// Scheduled or Retry, lease_expires_at while Processing) of the pending
// deliveries only, in due order, and locks what it takes with FOR UPDATE
// SKIP LOCKED. Concurrent claims, in one process or many, never hand out
// a delivery twice (under PerEndpoint they wait for one another only on
// an endpoint's lock, see below); a crashed process's
// deliveries become due again when their leases expire. Time always comes
// from the caller (ClaimRequest.Now, Transition.Now), never from the
// database's clock, so processes agree on what is due as long as their
// clocks do.
//
// Every claim has a fresh lease ID. Record and Release lock the delivery
// (FOR NO KEY UPDATE) and proceed only if it is still Processing under the
// caller's lease ID; otherwise they return convoy.ErrLeaseLost and change
// nothing, so a worker whose lease expired cannot overwrite the result of
// the worker that took over.
//
// # PerEndpoint across processes
//
// ClaimRequest.PerEndpoint holds across all processes sharing the store:
// an endpoint is given at most PerEndpoint minus ClaimRequest.InFlight of
// that endpoint (the caller's own attempts) minus its deliveries Processing
// under another owner's unexpired lease. So a slow endpoint holds at most
// its share of the workers of the whole fleet, not of each process.
// Concurrent claims cannot together overfill an endpoint: a claim takes a
// transaction-scoped advisory lock per endpoint of the work at the head
// of deliveries_due, in the order of the locks' keys, waiting for a
// claim (or an InsertEventClaim) that holds one, and counts the endpoint's leases
// only once it holds the lock, so it sees what the other took; a claim
// is short, so the wait is too. When the head of deliveries_due is all
// work of endpoints at their cap, the claim looks up the other
// endpoints' earliest due work through deliveries_endpoint_due, so a
// slow endpoint's backlog does not starve the others; there it skips
// the endpoints another claim holds (their work stays due for the next
// claim).
//
// # Ordered endpoints across processes
//
// An endpoint with Ordered set gets one delivery in flight across all
// processes: a claim hands out only its head (its pending delivery with
// the lowest ID, read through the partial index
// deliveries_endpoint_pending), only when the head is due and no
// delivery of the endpoint is Processing under a valid lease, whoever
// holds it. The decision is taken under the endpoint's advisory lock,
// which InsertEventClaim takes too, so two processes never both lease
// deliveries of one ordered endpoint. The deliveries behind the head stay
// in the table with due_at NULL once a claim has passed over them (under
// the endpoint's row lock in endpoint_state), so they leave
// deliveries_due and cost later claims, NextDue and Stats nothing; the
// group commit of Record makes the next head due when a head ends, and
// turning Ordered off makes them all due again. Until a claim has passed
// over them they count as due in Stats and NextDue, as the Store contract
// allows.
//
// # Group commit
//
// Record and Release calls made at the same time (the Dispatcher records
// from many goroutines) are queued and committed together by one goroutine
// per Store, in one transaction of two round trips whatever their number:
// the first begins and locks the batch's endpoints and deliveries, in ID
// order so batches of different processes cannot deadlock; the second
// inserts the attempts, updates the deliveries, the endpoints and the
// counters, one statement each from arrays, and commits. Each call is
// checked and applied on its own, in order: one that lost its lease fails
// alone and the others commit. The Store interface needs no batch method.
// [Options].RecordBatch bounds a batch (DefaultRecordBatch); 1 turns
// group commit off.
//
// InsertEvent calls made at the same time (concurrent Sends) are group
// committed the same way, by a second goroutine: one statement stores all
// their events and deliveries, one round trip and one commit for the
// lot. Two events of a batch with one idempotency key are told apart as
// if sent one after the other. When the statement fails because one call
// is refused (an unknown app, a duplicate ID), each call of the batch is
// stored again on its own, so only the refused ones fail.
// [Options].InsertBatch bounds the deliveries of a batch.
//
// The first pages of ListEndpoints (which Send reads for every event)
// asked for while another is being read are read together by a third
// goroutine: one statement for all their apps, each endpoint decoded
// once. It starts after every call it answers was made, so no call misses
// an endpoint committed before it; a call made while nothing is being
// read reads on its own at once.
//
// # No hot rows
//
// An endpoint's health is a narrow row of endpoint_state, which every
// Record of an attempt to it updates in its transaction; that row is also
// the endpoint's lock, so the EndpointStatus callback sees the health with
// that attempt, and the status, as no other transaction can change them,
// as the contract says. Within a batch the health is folded through the
// batch's attempts in order and the row is written once, so a busy
// endpoint costs one small row update per batch, not one per delivery: a
// batch to one endpoint takes no longer than a batch spread over fifty
// (see BenchmarkRecordHotEndpoint). Without group commit the row lock,
// held until the commit is flushed, serialises the Records of one
// endpoint.
//
// The Stats counters are 64 rows (shards) of the counts table. A
// transaction adds its changes to one shard that no other transaction
// holds (chosen with FOR UPDATE SKIP LOCKED), so writers never queue on a
// counter, and Stats sums the 64 rows: O(1). DueNow is an index scan of
// deliveries_due that stops at convoy.MaxDueCount, OldestDue its first
// entry.
//
// # Wake-ups
//
// Store implements [convoy.Waker] with LISTEN/NOTIFY on a channel named
// after the schema. Work made due by one process (InsertEvent, Requeue, a
// Record to Retry, a Release) is followed, after its commit, by a NOTIFY
// that wakes the others at once instead of after their PollInterval;
// those notifications are coalesced, at most one in flight per Store,
// because PostgreSQL serialises the commits of notifying transactions.
// The first SubscribeWake opens a dedicated connection (from the pool's
// configuration, not taken from the pool) that listens, and reconnects
// with backoff when it is lost, waking the subscribers once it listens
// again since a notification may have been missed.
//
// # Sending inside the application's transaction
//
// Store implements convoy.TxInserter[pgx.Tx], so [convoy.SendTx] writes an
// event and its deliveries in a pgx transaction of the application's:
// they commit with the application's own rows or vanish with a rollback,
// no worker can claim them before the commit, and a NOTIFY inside the
// transaction wakes the dispatchers of every process when it commits. No
// outbox table of the application's own is needed.
//
//	tx, err := pool.Begin(ctx)
//	if err != nil { ... }
//	defer tx.Rollback(ctx)
//	if _, err := tx.Exec(ctx, `UPDATE orders SET paid = true WHERE id = $1`, orderID); err != nil { ... }
//	if _, err := convoy.SendTx(ctx, d, tx, appID, convoy.Event{Type: "order.paid", Data: data}); err != nil { ... }
//	return tx.Commit(ctx) // the webhook goes out if, and only if, this commits
//
// The transaction must be on the store's database, at READ COMMITTED
// (PostgreSQL's default). A refused insert (unknown app, duplicate ID)
// runs under a savepoint and leaves the transaction usable. Code on
// database/sql can share the database through pgx's stdlib driver, but
// SendTx needs the transaction as a pgx.Tx.
//
// # Deploying
//
// Run several replicas against one database; they need nothing else in
// common. Apply migrations before or while rolling out (Options.Migrate
// on every replica is safe). On a rolling restart, Dispatcher.Close
// releases what it claimed and did not start, and finishes or abandons
// attempts in flight; a process killed outright leaves leases that expire
// after Config.Lease, when another replica claims those deliveries again,
// which is why delivery is at least once. Besides its pool, each Store
// uses one connection for LISTEN once a Dispatcher subscribes; a pool of
// a few connections per process is enough, since no connection is held
// while an HTTP attempt runs. LISTEN needs a connection of its own
// session: through a pooler in transaction mode (PgBouncer's default)
// notifications do not arrive, and dispatchers fall back to polling
// every PollInterval.
package postgres
