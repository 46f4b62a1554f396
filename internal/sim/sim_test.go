package sim

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
)

var (
	flagSeed    = flag.Uint64("seed", 0, "replay this seed alone and print its trace")
	flagKeep    = flag.String("keep", "", "with -seed: run only these steps (a shrunk scenario, as a failure prints it)")
	flagSeeds   = flag.Int("seeds", 0, "how many seeds TestSim covers (0: 2000; 300 under -short; 150 under -race)")
	flagFirst   = flag.Uint64("first", 1, "the first seed TestSim covers")
	flagSoak    = flag.Duration("soak", 0, "TestSoak: run fresh seeds for this long")
	flagBackend = flag.String("backend", "", "run every seed on this store: memory or bolt (default: a quarter of the seeds on bolt)")
	flagFull    = flag.Bool("full", false, "print the whole trace of a failing seed, not the minimal one")
	flagShrink  = flag.Int("shrink", 150, "how many runs a failing seed may spend looking for a shorter scenario (0: none)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// skipIfReplaying skips the other tests when -seed asks for one seed.
func skipIfReplaying(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed replays one seed (TestSim)")
	}
}

// seedCount is the number of seeds TestSim covers.
func seedCount() int {
	switch {
	case *flagSeeds > 0:
		return *flagSeeds
	case raceEnabled:
		return 150
	case testing.Short():
		return 300
	}
	return 2000
}

// runSeed runs one seed and, when it fails, reports it: the seed, the
// broken rule, a shrunk scenario and a minimal trace, and how to replay.
func runSeed(t *testing.T, seed uint64, o Options) *Result {
	t.Helper()
	sc := Generate(seed, *flagBackend)
	if o.Skip == nil && *flagKeep != "" && seed == *flagSeed {
		o.Skip = keepMask(t, *flagKeep, len(sc.Steps))
	}
	res := Run(t, sc, o)
	if res.Failure != nil {
		report(t, res, o)
	}
	return res
}

func keepMask(t *testing.T, keep string, n int) []bool {
	skip := make([]bool, n)
	for i := range skip {
		skip[i] = true
	}
	for _, f := range strings.Split(keep, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 || i >= n {
			t.Fatalf("-keep: %q is not a step of this scenario (0..%d)", f, n-1)
		}
		skip[i] = false
	}
	return skip
}

func report(t *testing.T, res *Result, o Options) {
	t.Helper()
	sc := res.Scenario
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d FAILS %s\n", sc.Seed, res.Failure)
	replay := fmt.Sprintf("go test ./internal/sim -seed=%d", sc.Seed)
	if *flagBackend != "" {
		replay += " -backend=" + *flagBackend
	}
	shown, skip := res, o.Skip
	if *flagShrink > 0 {
		var small *Result
		skip, small = Shrink(t, res, o, *flagShrink)
		if small != res {
			fmt.Fprintf(&b, "shrunk to steps %s (of %d), failing with: %s\n", Kept(skip), len(sc.Steps), small.Failure)
			replay += " -keep=" + Kept(skip)
			shown = small
		}
	}
	fmt.Fprintf(&b, "replay: %s\n", replay)
	lines := shown.Minimal()
	if *flagFull {
		lines = shown.Trace
	}
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\nto keep it in TestRegressions:\n" + sc.Literal(skip))
	t.Error(b.String())
}

// TestSim runs the default budget of seeds (see -seeds), a quarter of
// them on bolt, the rest on the memory store, GOMAXPROCS at a time. With
// -seed it replays that seed alone: a failure is reported with its
// minimal trace, and -v prints the whole trace of a passing seed.
func TestSim(t *testing.T) {
	if *flagSeed != 0 {
		res := runSeed(t, *flagSeed, Options{})
		if res.Failure == nil {
			t.Log(strings.Join(res.Trace, "\n"))
			t.Logf("seed %d passes: %+v, %s of simulated time, trace %s", *flagSeed, res.Counts, res.SimTime, res.Hash)
		}
		return
	}
	n := seedCount()
	start := time.Now()
	var (
		mu     sync.Mutex
		total  counts
		simDur time.Duration
		failed atomic.Int64
	)
	shards := runtime.GOMAXPROCS(0)
	t.Run("seeds", func(t *testing.T) {
		for k := range shards {
			t.Run(fmt.Sprintf("shard%d", k), func(t *testing.T) {
				t.Parallel()
				for i := k; i < n; i += shards {
					seed := *flagFirst + uint64(i)
					t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
						res := runSeed(t, seed, Options{})
						if res.Failure != nil {
							failed.Add(1)
						}
						mu.Lock()
						total.add(res.Counts)
						simDur += res.SimTime
						mu.Unlock()
					})
				}
			})
		}
	})
	el := time.Since(start)
	t.Logf("sim: %d seeds (%d..%d) in %s, %d failing; %s of simulated time; %d sends, %d requests, %d crashes, %d store faults, %d leases lost",
		n, *flagFirst, *flagFirst+uint64(n)-1, el.Round(time.Millisecond), failed.Load(), simDur.Round(time.Second),
		total.Sends, total.Requests, total.Crashes, total.Faults, total.LeaseLost)
}

func (c *counts) add(o counts) {
	c.Sends += o.Sends
	c.Acked += o.Acked
	c.Requests += o.Requests
	c.Recorded += o.Recorded
	c.Cut += o.Cut
	c.LeaseLost += o.LeaseLost
	c.Released += o.Released
	c.Claims += o.Claims
	c.Faults += o.Faults
	c.Crashes += o.Crashes
	c.Restarts += o.Restarts
}

// TestDeterminism runs seeds twice, on both stores, and requires the same
// trace, byte for byte: the run is the seed's alone.
func TestDeterminism(t *testing.T) {
	skipIfReplaying(t)
	seeds := []uint64{1, 2, 3, 7, 11, 42, 99, 123, 256, 1000, 4242, 65537}
	if testing.Short() || raceEnabled {
		seeds = seeds[:4]
	}
	for _, backend := range []string{"memory", "bolt"} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", backend, seed), func(t *testing.T) {
				sc := Generate(seed, backend)
				a := Run(t, sc, Options{})
				b := Run(t, sc, Options{})
				if a.Hash == b.Hash {
					return
				}
				for i := range max(len(a.Trace), len(b.Trace)) {
					x, y := line(a.Trace, i), line(b.Trace, i)
					if x != y {
						t.Fatalf("seed %d on %s: two runs differ at line %d of the trace:\n  %s\n  %s", seed, backend, i, x, y)
					}
				}
			})
		}
	}
}

func line(tr []string, i int) string {
	if i < len(tr) {
		return tr[i]
	}
	return "(end)"
}

// regressions are the scenarios that found bugs, shrunk and kept as
// literals (what a failing seed prints), so that they stay the same
// whatever later changes to Generate do to the seeds.
var regressions = []struct {
	bug string
	sc  *Scenario
}{
	// A dispatcher that had not read a rate-limited endpoint yet (here the
	// only one left after a crash) admitted its first deliveries without
	// the limit: two requests at once against a burst of 1 (fixed in
	// flow.go and engine.go: such a job takes its token, or goes back to
	// the queue, once the worker has read the endpoint).
	{"rate limit not applied before the endpoint was read", &Scenario{
		Seed: 29, Backend: "memory", Dispatchers: 3, Initial: 1,
		Workers: 5, PerEndpoint: 3, Timeout: 10 * time.Second, Lease: 15 * time.Second, PollInterval: 5 * time.Second,
		MaxRetryAfter: 10 * time.Minute, MaxClaims: 3,
		Retry: convoy.RetryPolicy{Kind: "schedule", Interval: 0, Multiplier: 0, MaxInterval: 0, Limit: 0, Schedule: []time.Duration{1 * time.Minute, 10 * time.Second, 1 * time.Second}},
		Dead:  DeadRule{Deliveries: 0, Window: 0}, Apps: 2, Receivers: 4,
		Endpoints:   []EndpointSpec{{1, 2, 1}, {0, 2, 0}, {1, 1, 0}, {0, 0, 1}},
		Flows:       []FlowSpec{{true, 0}, {false, 4}, {false, 3}, {false, 0}},
		ClaimInsert: true, Adaptive: false, Breaker: BreakerSpec{MinAttempts: 0, CoolDown: 0},
		Steps: []Step{
			{OpCrash, 12, 5, 2, 0},
			{OpSend, 8, 1, 9, 0},
			{OpSend, 14, 0, 9, 0},
		},
	}},
	// A worker whose load was slow (GetEvent stalled for 10 s, the lease
	// 11 s, the timeout 10 s) went on to send its attempt with too little
	// of the lease left to finish it: another dispatcher could take the
	// delivery over and send it too (fixed in engine.go, deliver).
	{"attempt started with less of the lease left than its timeout", &Scenario{
		Seed: 4, Backend: "memory", Dispatchers: 1, Initial: 1,
		Workers: 3, PerEndpoint: 3, Timeout: 10 * time.Second, Lease: 11 * time.Second, PollInterval: 10 * time.Second,
		MaxRetryAfter: 10 * time.Second, MaxClaims: 2,
		Retry: convoy.RetryPolicy{Kind: "linear", Limit: 0},
		Apps:  2, Receivers: 4,
		Endpoints: []EndpointSpec{{0, 0, 0}, {1, 1, 0}},
		Steps: []Step{
			{OpFault, 4, 2, 1, 10 * time.Second},
			{OpSend, 5, 2, 14, 1},
		},
	}},
	// The same after a minute's stall: the lease had lapsed and the other
	// dispatcher had delivered it meanwhile.
	{"attempt sent after another dispatcher took the delivery over", &Scenario{
		Seed: 8, Backend: "memory", Dispatchers: 2, Initial: 2,
		Workers: 4, PerEndpoint: 1, Timeout: 1 * time.Second, Lease: 16 * time.Second, PollInterval: 5 * time.Second,
		MaxRetryAfter: 1 * time.Minute, MaxClaims: 3,
		Retry: convoy.RetryPolicy{Kind: "linear", Interval: 30 * time.Second, Limit: 3},
		Apps:  1, Receivers: 4,
		Endpoints: []EndpointSpec{{0, 1, 1}, {0, 1, 3}, {0, 1, 0}, {0, 0, 0}, {0, 2, 1}},
		Steps: []Step{
			{OpFault, 6, 3, 2, 1 * time.Minute},
			{OpSend, 8, 2, 13, 1},
		},
	}},
	// On bolt, with the load failing (not stalling) and retried: the lease
	// was checked before the last retry's wait, not after it.
	{"attempt started after load retries ate the lease", &Scenario{
		Seed: 10, Backend: "bolt", Dispatchers: 1, Initial: 1,
		Workers: 1, PerEndpoint: 1, Timeout: 5 * time.Second, Lease: 6 * time.Second, PollInterval: 10 * time.Second,
		MaxRetryAfter: 1 * time.Minute, MaxClaims: 4,
		Retry: convoy.RetryPolicy{Kind: "exponential", Interval: 1 * time.Second, Multiplier: 2, MaxInterval: 1 * time.Minute, Limit: 3},
		Apps:  1, Receivers: 4,
		Endpoints: []EndpointSpec{{0, 0, 1}, {0, 1, 1}},
		Steps: []Step{
			{OpStop, 3, 6, 7, 1 * time.Second},
			{OpReceiver, 0, 0, 3, 0},
			{OpSend, 5, 1, 7, 0},
			{OpSend, 5, 1, 15, 0},
			{OpStart, 9, 5, 3, 0},
			{OpFault, 5, 1, 1, 10 * time.Second},
			{OpAdvance, 8, 2, 3, 2 * time.Minute},
		},
	}},
	// A read of an endpoint that a store held up for a minute (GetEndpoint
	// answering late in p3) was cached as fresh, so p3 attempted an
	// endpoint that p2 had made inactive (410) 48 s before (fixed in
	// cache.go).
	{"attempt to an endpoint inactive for longer than the settings cache lasts", &Scenario{
		Seed: 457, Backend: "memory", Dispatchers: 3, Initial: 3,
		Workers: 3, PerEndpoint: 1, Timeout: 5 * time.Second, Lease: 10 * time.Second, PollInterval: 10 * time.Second,
		MaxRetryAfter: 10 * time.Minute, MaxClaims: 2,
		Retry: convoy.RetryPolicy{Kind: "linear", Interval: 5 * time.Second, Limit: 4},
		Dead:  DeadRule{Deliveries: 2},
		Apps:  1, Receivers: 4,
		Endpoints: []EndpointSpec{{0, 3, 0}, {0, 3, 0}},
		Steps: []Step{
			{OpFault, 5, 3, 3, 1 * time.Minute},
			{OpSend, 5, 0, 11, 1},
			{OpReceiver, 3, 2, 3, 0},
			{OpResendEndpoint, 10, 1, 14, 0},
		},
	}},
}

// TestRegressions replays the scenarios that found bugs.
func TestRegressions(t *testing.T) {
	skipIfReplaying(t)
	for _, r := range regressions {
		t.Run(r.bug, func(t *testing.T) {
			res := Run(t, r.sc, Options{})
			if res.Failure != nil {
				t.Errorf("regression (%s): %s\n%s", r.bug, res.Failure, strings.Join(res.Minimal(), "\n"))
			}
		})
	}
}

// TestSoak runs fresh seeds for -soak, GOMAXPROCS at a time, starting
// from a seed taken from the clock (printed, with every failing seed).
func TestSoak(t *testing.T) {
	if *flagSoak <= 0 {
		t.Skip("run with -soak=DURATION")
	}
	skipIfReplaying(t)
	first := uint64(time.Now().UnixNano())%1_000_000_000 + 1_000_000
	t.Logf("soak: seeds from %d for %s", first, *flagSoak)
	deadline := time.Now().Add(*flagSoak)
	var next atomic.Uint64
	next.Store(first)
	var ran, failed atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && !t.Failed() {
				seed := next.Add(1) - 1
				ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					runSeed(t, seed, Options{})
				})
				ran.Add(1)
				if !ok {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("soak: %d seeds from %d, %d failing", ran.Load(), first, failed.Load())
}
