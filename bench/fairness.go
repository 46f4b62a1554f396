package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

// The fairness run: one dispatcher, 50 endpoints. 49 are healthy (1 ms per
// request); one slows down under load: it serves slowCapacity requests at
// once in slowService, and past that each request takes slowService per
// request in flight and is answered 503. One event in slowShare goes to
// the slow endpoint (more than it can take), the others to the healthy
// ones in turn, at a fixed rate; the run is repeated with no flow
// control, with adaptive concurrency, with the circuit breaker, and with
// both.
const (
	fairEndpoints    = 50
	slowCapacity     = 4
	slowService      = 20 * time.Millisecond
	slowShare        = 5
	healthyService   = time.Millisecond
	fairWorkers      = 64
	fairPerEndpoint  = 16
	fairRetryBackoff = 200 * time.Millisecond
)

// fairResult is one row of the fairness table.
type fairResult struct {
	name          string
	healthyPerSec float64
	healthyP99    time.Duration
	slowDelivered int64
	slowAttempts  int64
	slow503       int64
}

// fairReceiver serves the 50 endpoints: /h/N healthy, /slow the slow one.
type fairReceiver struct {
	slowInFlight atomic.Int64
	slowRequests atomic.Int64
	slow503      atomic.Int64
	slowOK       sync.Map // event ID → struct{}
	mu           sync.Mutex
	healthyLat   []time.Duration
	healthyOK    map[string]bool
}

func (r *fairReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	var ev struct {
		Sent int64 `json:"sent"`
	}
	_ = json.Unmarshal(body, &ev)
	id := req.Header.Get(convoy.HeaderEventID)
	if req.URL.Path == "/slow" {
		r.slowRequests.Add(1)
		n := r.slowInFlight.Add(1)
		defer r.slowInFlight.Add(-1)
		if n > slowCapacity {
			time.Sleep(slowService * time.Duration(n))
			r.slow503.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		time.Sleep(slowService)
		r.slowOK.Store(id, struct{}{})
		return
	}
	time.Sleep(healthyService)
	lat := time.Since(time.Unix(0, ev.Sent))
	r.mu.Lock()
	if !r.healthyOK[id] {
		r.healthyOK[id] = true
		r.healthyLat = append(r.healthyLat, lat)
	}
	r.mu.Unlock()
}

// runFairness runs the four configurations and prints their table.
func runFairness(ctx context.Context, o *options, stdout io.Writer) error {
	perSec, dur := 1500, 5*time.Second
	if o.quick {
		perSec, dur = 500, time.Second
	}
	configs := []struct {
		name string
		set  func(*convoy.Config)
	}{
		{"no flow control", func(*convoy.Config) {}},
		{"adaptive concurrency", func(c *convoy.Config) { c.Adaptive = &convoy.AdaptiveConcurrency{} }},
		{"circuit breaker", func(c *convoy.Config) { c.Breaker = &convoy.CircuitBreaker{CoolDown: 2 * time.Second} }},
		{"adaptive + breaker", func(c *convoy.Config) {
			c.Adaptive = &convoy.AdaptiveConcurrency{}
			c.Breaker = &convoy.CircuitBreaker{CoolDown: 2 * time.Second}
		}},
	}
	var rows []fairResult
	for _, c := range configs {
		r, err := fairRun(ctx, c.name, c.set, perSec, dur)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(stdout, "Fairness: %d endpoints, %d events/s for %v; 49 healthy ones answer in %v and share 4 events in 5;\n"+
		"the slow one gets 1 in 5 (%d/s, more than it takes): it serves %d at once in %v, and past that slows down\n"+
		"(%v × requests in flight) and answers 503. Workers %d, PerEndpoint %d, retries every %v.\n\n",
		fairEndpoints, perSec, dur, healthyService, perSec/slowShare, slowCapacity, slowService, slowService, fairWorkers, fairPerEndpoint, fairRetryBackoff)
	fmt.Fprintf(stdout, "%-22s  %14s  %9s  %11s  %12s  %13s  %s\n", "configuration", "healthy del./s", "× none", "healthy p99", "slow: del.", "slow: att/del", "slow: 503s")
	base := rows[0].healthyPerSec
	for _, r := range rows {
		perDel := "-"
		if r.slowDelivered > 0 {
			perDel = strconv.FormatFloat(float64(r.slowAttempts)/float64(r.slowDelivered), 'f', 2, 64)
		}
		fmt.Fprintf(stdout, "%-22s  %14s  %9.2f  %11s  %12d  %13s  %d\n", r.name, thousands(r.healthyPerSec),
			r.healthyPerSec/base, fmtDur(r.healthyP99), r.slowDelivered, perDel, r.slow503)
	}
	fmt.Fprintln(stdout, "\nhealthy del./s: healthy events received over the time from the first send to the last healthy arrival;"+
		"\nhealthy p99: send to arrival; slow: att/del: requests the slow endpoint got per event it accepted.")
	return nil
}

func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fmtDur(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}

func fairRun(ctx context.Context, name string, set func(*convoy.Config), perSec int, dur time.Duration) (fairResult, error) {
	rc := &fairReceiver{healthyOK: make(map[string]bool)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fairResult{}, err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	st := memory.New()
	defer st.Close()
	cfg := convoy.Config{
		Store: st, Workers: fairWorkers, PerEndpoint: fairPerEndpoint, Timeout: 2 * time.Second,
		Retry:         convoy.LinearRetry(fairRetryBackoff, 1000),
		Logger:        quietLogger(),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	set(&cfg)
	d, err := convoy.New(cfg)
	if err != nil {
		return fairResult{}, err
	}
	if err := d.Start(ctx); err != nil {
		return fairResult{}, err
	}
	defer d.Close(context.Background())
	apps := make([]string, fairEndpoints)
	for i := range apps {
		app, err := d.CreateApp(ctx, convoy.App{Name: "app " + strconv.Itoa(i)})
		if err != nil {
			return fairResult{}, err
		}
		url := base + "/h/" + strconv.Itoa(i)
		if i == 0 {
			url = base + "/slow"
		}
		if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: url}); err != nil {
			return fairResult{}, err
		}
		apps[i] = app.ID
	}

	start := time.Now()
	healthySent := 0
	tick := time.Second / time.Duration(perSec)
	for i := 0; time.Since(start) < dur; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * tick)); wait > 0 {
			time.Sleep(wait)
		}
		data := `{"sent":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`
		app := apps[0]
		if i%slowShare != 0 {
			app = apps[1+healthySent%(fairEndpoints-1)]
			healthySent++
		}
		if _, err := d.Send(ctx, app, convoy.Event{Type: "bench.fair", Data: json.RawMessage(data)}); err != nil {
			return fairResult{}, err
		}
	}
	// Wait for the healthy deliveries (the slow endpoint's backlog is not
	// waited for: its figures are what it got meanwhile).
	var last time.Time
	for deadline := time.Now().Add(60 * time.Second); ; {
		rc.mu.Lock()
		n := len(rc.healthyOK)
		rc.mu.Unlock()
		if n >= healthySent {
			last = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return fairResult{}, fmt.Errorf("only %d of %d healthy deliveries arrived", n, healthySent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rc.mu.Lock()
	lat := slices.Clone(rc.healthyLat)
	rc.mu.Unlock()
	slices.Sort(lat)
	var slowOK int64
	rc.slowOK.Range(func(any, any) bool { slowOK++; return true })
	return fairResult{
		name:          name,
		healthyPerSec: float64(healthySent) / last.Sub(start).Seconds(),
		healthyP99:    lat[min(len(lat)-1, len(lat)*99/100)],
		slowDelivered: slowOK,
		slowAttempts:  rc.slowRequests.Load(),
		slow503:       rc.slow503.Load(),
	}, nil
}
