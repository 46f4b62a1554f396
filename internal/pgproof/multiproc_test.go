package pgproof

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil/tally"
)

var (
	mpSeed   = flag.Int64("multiproc-seed", 1, "seed of the multi-process test's receiver faults")
	mpEvents = flag.Int("multiproc-events", 200, "events the multi-process test sends")
	mpKills  = flag.Int("multiproc-kills", 2, "how many times the multi-process test kills a process")
)

const (
	// processHeader is the header cmd/replica marks its requests with.
	processHeader = "X-Proof-Process"
	// mpProcesses dispatch at once on one schema.
	mpProcesses = 3
	// mpEndpoints of one app each get every event.
	mpEndpoints = 4
	// Each process's pool, and the per-endpoint cap, which the PostgreSQL
	// store holds across processes: at most mpPerEndpoint attempts in
	// flight to one endpoint, whichever process makes them.
	mpWorkers     = 8
	mpPerEndpoint = 4
	mpTimeout     = 2 * time.Second
	mpLease       = 4 * time.Second
	// mpSendEvery paces the test's Sends: mpEvents of them take about
	// mpEvents × mpSendEvery, during which the kills happen.
	mpSendEvery = 40 * time.Millisecond
	// claimSlack bounds how long before its request reached the receiver
	// a claim may have been made (the worker loads the endpoint, signs and
	// connects). A delivery re-attempted under the same attempt number by
	// another process must arrive at least Lease - claimSlack after the
	// first try: its lease, which began before that try, had to expire.
	claimSlack = time.Second
	// mpPoll is the replicas' PollInterval, longer than the whole test:
	// the events the test sends reach them only through the store's
	// cross-process wake-ups (LISTEN/NOTIFY), and what is due later
	// (retries, expired leases) through their NextDue timers.
	mpPoll = 5 * time.Minute
	// mpDrain bounds the time from the last Send to every delivery final.
	mpDrain = 45 * time.Second
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// TestMultiProcess runs three dispatcher processes on one schema, sends
// events to an app with four endpoints (one fast, one slow, one failing at
// random, one mixed with attempts that time out), kills a process with
// SIGKILL while it has attempts in flight and restarts it, twice, and then
// checks from the receiver's log and the store that:
//
//   - no acknowledged event is lost: each of its deliveries ended Success
//     and reached the receiver (or ended Failure or Discarded);
//   - no two attempts of one delivery overlapped in time, whichever
//     processes made them;
//   - an attempt repeated under the same attempt number (its first try was
//     never recorded) comes from another process than a live one: the
//     first process was killed after that try began, and the repeat came
//     after the first lease had expired;
//   - every duplicate 2xx is explained by such a kill;
//   - no endpoint ever had more than PerEndpoint attempts in flight, all
//     processes together.
//
// The replicas poll the store once per mpPoll, longer than the test, so
// the events reach them through cross-process wake-ups.
func TestMultiProcess(t *testing.T) {
	replicaBinary(t) // build before the clock starts
	ctx := context.Background()
	db := newDatabase(t)
	st := db.open(t)
	rc := newLogReceiver(t, rand.New(rand.NewPCG(uint64(*mpSeed), 0x6d70)))

	// The sending side: a dispatcher that is never started, as in a web
	// process that only calls Send; the replicas deliver.
	d, err := convoy.New(convoy.Config{Store: st, AllowNetworks: loopback, Logger: quiet()})
	require.NoError(t, err)
	app, err := d.CreateApp(ctx, convoy.App{Name: "multiproc"})
	require.NoError(t, err)
	for i := range mpEndpoints {
		_, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: fmt.Sprintf("%s/ep/%d", rc.URL, i)})
		require.NoError(t, err)
	}

	args := []string{
		"-dsn", db.dsn, "-schema", db.schema,
		"-workers", strconv.Itoa(mpWorkers), "-per-endpoint", strconv.Itoa(mpPerEndpoint),
		"-timeout", mpTimeout.String(), "-lease", mpLease.String(), "-poll", mpPoll.String(),
		"-retry-every", "100ms", "-retries", "20",
	}
	procs := make([]*process, mpProcesses) // the current incarnation of each
	var all []*process
	start := func(i, incarnation int) {
		p := startProcess(t, fmt.Sprintf("p%d.%d", i+1, incarnation), args...)
		procs[i] = p
		all = append(all, p)
	}
	for i := range procs {
		start(i, 0)
	}
	for _, p := range procs {
		p.waitLine(t, 30*time.Second, func(l string) bool { return l == "ready" })
	}

	// Send from a goroutine; the test goroutine kills.
	snd := &sender{d: d, appID: app.ID}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		snd.run(ctx, *mpEvents, mpSendEvery)
	}()

	incarnations := make([]int, mpProcesses)
	for k := range *mpKills {
		// Spread the kills over the sending, each with a different victim.
		snd.waitAcked(t, (k+1)**mpEvents/(*mpKills+1))
		v := k % mpProcesses
		victim := procs[v]
		n := rc.waitInFlight(t, victim.name, 10*time.Second)
		victim.kill(t)
		rc.killed(victim.name, victim.killedAt)
		t.Logf("killed %s with %d attempts in flight", victim.name, n)
		incarnations[v]++
		start(v, incarnations[v])
		procs[v].waitLine(t, 30*time.Second, func(l string) bool { return l == "ready" })
	}
	<-sent
	require.Empty(t, snd.errs, "Send failed")

	// Repeating an acknowledged idempotency key stores nothing and returns
	// the first event.
	for _, key := range []string{"ev-0000", fmt.Sprintf("ev-%04d", *mpEvents-1)} {
		res, err := d.Send(ctx, app.ID, convoy.Event{Type: "proof.multiproc", Data: json.RawMessage(`{}`), IdempotencyKey: key})
		require.NoError(t, err)
		require.True(t, res.Duplicate)
		require.Equal(t, snd.byKey[key], res.Event.ID)
	}

	// Every delivery reaches a final state.
	acked := snd.acked()
	eventually(t, mpDrain, 100*time.Millisecond, func() (bool, string) {
		s, err := st.Stats(ctx, time.Now())
		require.NoError(t, err)
		total, pending := 0, 0
		for status, n := range s.Deliveries {
			total += n
			if !status.Final() {
				pending += n
			}
		}
		return pending == 0 && total == mpEndpoints*len(acked),
			fmt.Sprintf("%d of %d deliveries pending (want %d stored)", pending, total, mpEndpoints*len(acked))
	})
	for _, p := range procs {
		p.stop(t, 20*time.Second)
	}
	for _, p := range all {
		p.checkStderr(t)
	}

	f, err := tally.Walk(ctx, st)
	require.NoError(t, err)
	res := tally.Count(acked, rc.received, f)
	check := rc.check(mpLease)
	var lost []string
	for _, id := range acked {
		ds := f.ByEvent[id]
		if len(ds) != mpEndpoints {
			lost = append(lost, fmt.Sprintf("event %s: %d deliveries stored", id, len(ds)))
		}
		for _, dl := range ds {
			switch {
			case dl.Status == convoy.DeliverySuccess && rc.received.Delivery(dl.ID) == 0:
				lost = append(lost, fmt.Sprintf("delivery %s: Success, never received", dl.ID))
			case !dl.Status.Final():
				lost = append(lost, fmt.Sprintf("delivery %s: left %s", dl.ID, dl.Status))
			}
		}
	}
	fmt.Printf("multiproc: processes=%d kills=%d acknowledged=%d received=%d lost=%d duplicates=%d overlaps=%d takeovers=%d max_in_flight_per_endpoint=%d\n",
		mpProcesses, *mpKills, res.Acknowledged, res.Received, len(lost), res.Duplicates, len(check.overlaps), check.takeovers, check.maxPerEndpoint)
	t.Logf("%d requests logged; deliveries by status %v", check.requests, f.ByStatus)

	require.Empty(t, lost, "lost")
	require.Empty(t, check.overlaps, "attempts of one delivery overlapped")
	require.Empty(t, check.fencing, "a delivery was attempted again while its first lease may have been valid")
	require.Empty(t, check.unexplained, "duplicates not explained by a kill")
	require.LessOrEqual(t, check.maxPerEndpoint, mpPerEndpoint, "per-endpoint cap exceeded across processes")
	require.Equal(t, mpEndpoints*len(acked), f.ByStatus[convoy.DeliverySuccess], "every delivery ends Success against receivers that fail at random but recover")
	require.Positive(t, check.takeovers, "no delivery was taken over after a kill: the kills did not hit attempts in flight")
}

// quiet logs warnings and errors only.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// sender sends events with idempotency keys ev-0000, ev-0001, … and keeps
// the IDs Send acknowledged.
type sender struct {
	d     *convoy.Dispatcher
	appID string

	mu    sync.Mutex
	ids   []string
	byKey map[string]string
	errs  []error
	ch    chan struct{} // closed and replaced on each acknowledgement
}

func (s *sender) run(ctx context.Context, n int, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range n {
		key := fmt.Sprintf("ev-%04d", i)
		data, _ := json.Marshal(map[string]int{"n": i})
		// A failed Send may have stored the event: repeat it under the
		// same key, which cannot send it twice.
		var res *convoy.SendResult
		var err error
		for range 3 {
			if res, err = s.d.Send(ctx, s.appID, convoy.Event{Type: "proof.multiproc", Data: data, IdempotencyKey: key}); err == nil {
				break
			}
		}
		s.mu.Lock()
		if err != nil {
			s.errs = append(s.errs, err)
		} else {
			if s.byKey == nil {
				s.byKey = make(map[string]string)
			}
			s.byKey[key] = res.Event.ID
			s.ids = append(s.ids, res.Event.ID)
		}
		if s.ch != nil {
			close(s.ch)
			s.ch = nil
		}
		s.mu.Unlock()
		<-tick.C
	}
}

func (s *sender) acked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// waitAcked waits until n events were acknowledged.
func (s *sender) waitAcked(t *testing.T, n int) {
	t.Helper()
	tm := time.NewTimer(30 * time.Second)
	defer tm.Stop()
	for {
		s.mu.Lock()
		got := len(s.ids) + len(s.errs)
		if s.ch == nil {
			s.ch = make(chan struct{})
		}
		ch := s.ch
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-tm.C:
			t.Fatalf("only %d of %d events sent after 30 s", got, n)
		}
	}
}

// request is one request the receiver logged.
type request struct {
	delivery, event, process string
	endpoint, attempt        int
	start, end               time.Time
	status                   int // the answer; 0 when the client was gone first
}

// logReceiver serves /ep/0 … /ep/3 and logs every request (see
// planAnswer): /ep/0 answers 200 at once; /ep/1 answers 200 after 20 to
// 200 ms; /ep/2 answers 500 to a third of the requests at random; /ep/3
// answers 500 at once, 503 after a while, not at all before the sender's
// timeout, or 200 slowly or at once.
type logReceiver struct {
	*httptest.Server
	received *tally.Received

	mu       sync.Mutex
	rng      *rand.Rand
	log      []request
	inFlight map[*request]time.Time // requests being answered → when their answer is due
	kills    map[string]time.Time   // process → when it was killed
}

func newLogReceiver(t *testing.T, rng *rand.Rand) *logReceiver {
	rc := &logReceiver{received: tally.NewReceived(), rng: rng, inFlight: map[*request]time.Time{}, kills: map[string]time.Time{}}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

func (rc *logReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	ep, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/ep/"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	attempt, _ := strconv.Atoi(r.Header.Get(convoy.HeaderAttempt))
	req := &request{
		delivery: r.Header.Get(convoy.HeaderDeliveryID), event: r.Header.Get(convoy.HeaderEventID),
		process: r.Header.Get(processHeader), endpoint: ep, attempt: attempt, start: time.Now(),
	}
	rc.mu.Lock()
	pl := planAnswer(ep, rc.rng.Float64(), time.Duration(20+rc.rng.IntN(180))*time.Millisecond)
	due := req.start.Add(pl.wait)
	if pl.hang {
		due = req.start.Add(mpTimeout)
	}
	rc.inFlight[req] = due
	rc.mu.Unlock()

	switch {
	case pl.hang:
		<-r.Context().Done() // past the sender's timeout
	case pl.wait > 0 && !tally.WaitFor(r, pl.wait):
		// The client went away first.
	case pl.status == http.StatusOK:
		// Count the receipt before answering: once the answer may have
		// reached the sender, it is a delivery.
		rc.received.Add(r.Header)
		req.status = pl.status
		w.WriteHeader(pl.status)
	default:
		req.status = pl.status
		w.WriteHeader(pl.status)
	}

	rc.mu.Lock()
	req.end = time.Now()
	delete(rc.inFlight, req)
	rc.log = append(rc.log, *req)
	rc.mu.Unlock()
}

// answerPlan is how the receiver answers one request: after waiting (or
// never, before the sender's timeout, when hang is set), with status.
type answerPlan struct {
	wait   time.Duration
	hang   bool
	status int
}

// planAnswer decides the answer of endpoint ep from a random p in [0, 1)
// and a random delay.
func planAnswer(ep int, p float64, delay time.Duration) answerPlan {
	switch {
	case ep == 1, ep == 3 && p > 0.80:
		return answerPlan{wait: delay, status: http.StatusOK}
	case ep == 2 && p < 0.33, ep == 3 && p < 0.10:
		return answerPlan{status: http.StatusInternalServerError}
	case ep == 3 && p < 0.15:
		return answerPlan{wait: delay, status: http.StatusServiceUnavailable}
	case ep == 3 && p < 0.17:
		return answerPlan{hang: true}
	}
	return answerPlan{status: http.StatusOK}
}

// waitInFlight waits until process has a request being answered whose
// answer is due at least killMargin from now, so that a kill sent at once
// lands while the attempt is in flight, and returns how many requests the
// process has in flight.
func (rc *logReceiver) waitInFlight(t *testing.T, process string, d time.Duration) int {
	t.Helper()
	const killMargin = 50 * time.Millisecond
	var n int
	eventually(t, d, 2*time.Millisecond, func() (bool, string) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		n = 0
		held := false
		for r, due := range rc.inFlight {
			if r.process == process {
				n++
				held = held || time.Until(due) >= killMargin
			}
		}
		return held, process + " had no request in flight for long enough"
	})
	return n
}

// killed notes when process was killed.
func (rc *logReceiver) killed(process string, at time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.kills[process] = at
}

// logCheck is what the receiver's log shows.
type logCheck struct {
	requests int
	// overlaps are pairs of attempts of one delivery that were in flight
	// at the same time.
	overlaps []string
	// fencing are repeats of an attempt (same delivery, same attempt
	// number) that a valid lease should have prevented.
	fencing []string
	// unexplained are duplicate 2xx answers whose first was made by a
	// process that was not killed after it.
	unexplained []string
	// takeovers counts attempts repeated by another process after a kill.
	takeovers int
	// maxPerEndpoint is the most requests one endpoint was answering at
	// once.
	maxPerEndpoint int
}

// check reads the log. A Success recorded ends a delivery and a recorded
// failure moves the attempt number on, so two requests of one delivery
// under the same attempt number mean that the first try was never
// recorded: its process died. The second try must come from another
// process (or a later incarnation), after the first was killed, and late
// enough that the first lease (taken before the first try) had expired.
func (rc *logReceiver) check(lease time.Duration) logCheck {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c := logCheck{requests: len(rc.log)}
	byDelivery := map[string][]request{}
	for _, r := range rc.log {
		byDelivery[r.delivery] = append(byDelivery[r.delivery], r)
	}
	for id, rs := range byDelivery {
		slices.SortFunc(rs, func(a, b request) int { return a.start.Compare(b.start) })
		for i, a := range rs {
			for _, b := range rs[i+1:] {
				if b.start.Before(a.end) {
					c.overlaps = append(c.overlaps, fmt.Sprintf("delivery %s: attempt %d by %s [%v, %v] and attempt %d by %s from %v",
						id, a.attempt, a.process, a.start.Format(time.StampMicro), a.end.Format(time.StampMicro), b.attempt, b.process, b.start.Format(time.StampMicro)))
				}
			}
			if i+1 < len(rs) && rs[i+1].attempt == a.attempt {
				b := rs[i+1]
				killed, ok := rc.kills[a.process]
				switch {
				case !ok || !a.start.Before(killed):
					c.fencing = append(c.fencing, fmt.Sprintf("delivery %s: attempt %d by %s at %v repeated by %s at %v, but %s was not killed after its try",
						id, a.attempt, a.process, a.start.Format(time.StampMicro), b.process, b.start.Format(time.StampMicro), a.process))
				case b.start.Before(killed), b.start.Sub(a.start) < lease-claimSlack:
					c.fencing = append(c.fencing, fmt.Sprintf("delivery %s: attempt %d by %s at %v (killed at %v) repeated by %s at %v, before its lease could expire",
						id, a.attempt, a.process, a.start.Format(time.StampMicro), killed.Format(time.StampMicro), b.process, b.start.Format(time.StampMicro)))
				default:
					c.takeovers++
				}
			}
		}
		var ok2xx []request
		for _, r := range rs {
			if r.status/100 == 2 {
				ok2xx = append(ok2xx, r)
			}
		}
		for _, a := range ok2xx[:max(0, len(ok2xx)-1)] {
			if killed, ok := rc.kills[a.process]; !ok || !a.start.Before(killed) {
				c.unexplained = append(c.unexplained, fmt.Sprintf("delivery %s: 2xx to attempt %d by %s, then again", id, a.attempt, a.process))
			}
		}
	}
	// Requests in flight per endpoint: +1 at each start, -1 at each end.
	type edge struct {
		at    time.Time
		delta int
	}
	byEndpoint := map[int][]edge{}
	for _, r := range rc.log {
		byEndpoint[r.endpoint] = append(byEndpoint[r.endpoint], edge{r.start, 1}, edge{r.end, -1})
	}
	for _, es := range byEndpoint {
		slices.SortFunc(es, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.delta - b.delta // an end before a start at the same instant
		})
		n := 0
		for _, e := range es {
			n += e.delta
			c.maxPerEndpoint = max(c.maxPerEndpoint, n)
		}
	}
	return c
}
