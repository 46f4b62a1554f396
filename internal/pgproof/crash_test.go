package pgproof

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil/tally"
	"github.com/convoykit/convoy/store/postgres"
)

var (
	crashSeed   = flag.Int64("seed", 1, "seed of the crash test's kill times and receiver faults")
	crashCycles = flag.Int("cycles", 24, "how many times the crash test kills the sender")
)

const (
	// crashWorkers is the sender's pool size (and per-endpoint cap).
	crashWorkers = 8
	// crashMaxLeases bounds the deliveries one process holds leased: the
	// scheduler claims no more than its free workers, and a worker that
	// finished an attempt hands the result to the recorder, which holds at
	// most Workers results waiting to be stored (each keeps its lease until
	// stored). A kill catches at most that many in flight.
	crashMaxLeases = 2 * crashWorkers
	// A run lasts between crashMinRun and crashMaxRun before its SIGKILL:
	// short runs die while opening the store or sending the first events,
	// long ones while deliveries, retries and takeovers of the previous
	// run's leases (2 s) are under way.
	crashMinRun = 100 * time.Millisecond
	crashMaxRun = 2 * time.Second
	// crashDrain bounds the last run, which delivers what is left.
	crashDrain = 60 * time.Second
)

// TestCrashKill9 is internal/crashtest's TestCrashKill9 on PostgreSQL: it
// kills the sender (cmd/replica -send) with SIGKILL at random moments,
// restarts it on the same schema each time, lets a last run drain, then
// checks that every event Send acknowledged was received, that every
// delivery ended Success, and that duplicates come only from deliveries
// that were in flight at a kill.
func TestCrashKill9(t *testing.T) {
	require.GreaterOrEqual(t, *crashCycles, 1)
	replicaBinary(t)
	ctx := context.Background()
	db := newDatabase(t)
	st := db.open(t) // migrates the schema; the senders find it ready
	rng := rand.New(rand.NewPCG(uint64(*crashSeed), 0x6b696c6c))
	rc := tally.NewFlakyReceiver(t, rand.New(rand.NewPCG(uint64(*crashSeed), 0x72656376)))
	args := []string{
		"-schema", db.schema, "-url", rc.URL,
		"-workers", strconv.Itoa(crashWorkers), "-per-endpoint", strconv.Itoa(crashWorkers),
		// Short enough that a killed run's leases expire, and its retries
		// come due, within a few cycles of the test.
		"-timeout", "1s", "-lease", "2s", "-poll", "200ms",
		// 20 retries at 50 ms: the receiver fails at most a quarter of the
		// requests at random, so exhausting them (0.25^21) does not happen.
		"-retry-every", "50ms", "-retries", "20",
	}

	var acked []string
	// inFlight maps a delivery to the leases it held when a sender was
	// killed; each is one claim that may have reached the receiver without
	// its result being recorded.
	inFlight := make(map[string]map[string]bool)
	var killsSending, killsDelivering, killsRetrying int
	for c := range *crashCycles {
		run := crashMinRun + time.Duration(rng.Int64N(int64(crashMaxRun-crashMinRun)))
		name := fmt.Sprintf("sender.%d", c)
		p := startProcess(t, name, append(args, "-dsn", db.dsnFor(name), "-send", "2", "-interval", "20ms")...)
		tm := time.NewTimer(run)
		<-tm.C
		p.kill(t)
		db.sessionsGone(t, name)
		ids := p.lines()
		acked = append(acked, ids...)

		// What the killed process left: its leases, and retries due.
		f, err := tally.Walk(ctx, st, convoy.DeliveryProcessing, convoy.DeliveryRetry)
		require.NoError(t, err)
		fresh, owners := 0, map[string]bool{}
		for _, d := range f.With(convoy.DeliveryProcessing) {
			if inFlight[d.ID] == nil {
				inFlight[d.ID] = make(map[string]bool)
			}
			if !inFlight[d.ID][d.LeaseID] {
				inFlight[d.ID][d.LeaseID] = true
				fresh++
				owners[d.LeaseOwner] = true
			}
		}
		require.LessOrEqual(t, fresh, crashMaxLeases, "cycle %d: more leases than one process may hold", c)
		require.LessOrEqual(t, len(owners), 1, "cycle %d: leases of several owners appeared", c)
		if len(ids) > 0 {
			killsSending++
		}
		if fresh > 0 {
			killsDelivering++
		}
		if len(f.With(convoy.DeliveryRetry)) > 0 {
			killsRetrying++
		}
		t.Logf("cycle %d: killed after %v: %d acknowledged, %d leases in flight, %d retries pending",
			c, run.Round(time.Millisecond), len(ids), fresh, len(f.With(convoy.DeliveryRetry)))
	}

	// The receiver is healthy from now on, so every delivery can succeed.
	rc.Healthy.Store(true)
	p := startProcess(t, "drain", append(args, "-dsn", db.dsn, "-drain")...)
	require.NoError(t, p.wait(crashDrain), "drain run:\n%s", p.stderrTail())
	p.checkStderr(t)

	f, err := tally.Walk(ctx, st)
	require.NoError(t, err)
	res := tally.Count(acked, rc.Received, f)
	fmt.Printf("crash: seed=%d cycles=%d %s\n", *crashSeed, *crashCycles, res)
	t.Logf("kills while sending %d, with deliveries in flight %d, with retries pending %d; %d requests, %d deliveries stored",
		killsSending, killsDelivering, killsRetrying, rc.Requests.Load(), len(f.Deliveries))

	require.Empty(t, res.Lost, "acknowledged events never received")
	require.Empty(t, f.NotFinal(), "deliveries left unfinished")
	require.Empty(t, f.With(convoy.DeliveryFailure), "deliveries ended Failure against a receiver that recovers")
	require.Empty(t, res.Unsettled)
	require.Equal(t, len(f.Deliveries), f.ByStatus[convoy.DeliverySuccess])
	for _, d := range f.Deliveries {
		require.Positive(t, rc.Received.Delivery(d.ID), "delivery %s ended Success but was never received", d.ID)
	}
	checkCounts(t, st, f)

	// Duplicates, as in internal/crashtest: a delivery is received twice
	// only when a claim got a 2xx whose Success was never recorded, which
	// in a live process (lease 2 s, attempt at most 1 s) means a kill cut
	// it off: it was Processing under that lease when the process died,
	// and the walk after that kill saw it.
	leases, unexplained := 0, 0
	for _, ls := range inFlight {
		leases += len(ls)
	}
	for _, d := range f.Deliveries {
		if extra := rc.Received.Delivery(d.ID) - 1; extra > len(inFlight[d.ID]) {
			unexplained += extra - len(inFlight[d.ID])
		}
	}
	t.Logf("%d leases in flight at the kills; %d duplicates of deliveries not in flight at a kill", leases, unexplained)
	require.LessOrEqual(t, res.Duplicates, leases, "more duplicates than deliveries in flight at the kills")
	require.LessOrEqual(t, leases, crashMaxLeases**crashCycles)

	require.Positive(t, killsSending, "no kill while sending")
	require.Positive(t, killsDelivering, "no kill with deliveries in flight")
	require.Positive(t, killsRetrying, "no kill with retries pending")
}

// checkCounts compares the store's Stats counters, which the PostgreSQL
// store keeps in sharded rows updated by the transactions of processes
// that were killed mid-way, with the deliveries it holds.
func checkCounts(t *testing.T, st *postgres.Store, f *tally.Final) {
	t.Helper()
	s, err := st.Stats(context.Background(), time.Now())
	require.NoError(t, err)
	want := map[convoy.DeliveryStatus]int{}
	for status, n := range f.ByStatus {
		if n != 0 {
			want[status] = n
		}
	}
	require.Equal(t, want, nonZero(s.Deliveries), "Stats counters against the deliveries stored")
}
