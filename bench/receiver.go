package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runHeader names the run a request belongs to. Every configuration sets
// it (the library through Endpoint.Headers), so a late duplicate of an
// earlier run is never counted in a later one.
const runHeader = "X-Bench-Run"

// receiver is the local webhook receiver: it reads each body, answers 200
// and records, per run, which sequence numbers arrived, when, and how long
// after they were sent.
type receiver struct {
	cur   atomic.Pointer[runState]
	stray atomic.Int64 // requests naming no current run
	bufs  sync.Pool
}

type runState struct {
	id       string
	seen     []atomic.Uint32
	lat      []atomic.Int64 // ns from sent to arrival, first arrival only
	count    atomic.Int64   // distinct sequence numbers arrived
	requests atomic.Int64
	dups     atomic.Int64
	bad      atomic.Int64
	first    atomic.Int64  // Unix ns of the first distinct arrival
	last     atomic.Int64  // Unix ns of the latest distinct arrival
	cpu0     time.Duration // the receiver process's CPU time at the reset
}

// recvStats is what /_stats answers.
type recvStats struct {
	Run      string `json:"run"`
	Count    int64  `json:"count"`
	Requests int64  `json:"requests"`
	Dups     int64  `json:"dups"`
	Bad      int64  `json:"bad"`
	Stray    int64  `json:"stray"`
	First    int64  `json:"first"`
	Last     int64  `json:"last"`
	P50      int64  `json:"p50"`
	P99      int64  `json:"p99"`
	Max      int64  `json:"max"`
	// CPU is the receiver process's CPU time since the reset, in ns.
	CPU int64 `json:"cpu"`
}

func newReceiver() *receiver {
	r := &receiver{}
	r.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	return r
}

// serve listens on 127.0.0.1 and serves until ctx ends. It returns the
// base URL.
func (rc *receiver) serve(ctx context.Context) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("receiver: %v\n", err)
		}
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_reset":
		rc.reset(w, r)
	case "/_stats":
		rc.stats(w, r)
	default:
		rc.hook(w, r)
	}
}

// hook takes one delivery.
func (rc *receiver) hook(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	bp := rc.bufs.Get().(*[]byte)
	buf, err := readBody(r.Body, (*bp)[:0])
	defer func() { *bp = buf[:0]; rc.bufs.Put(bp) }()
	if err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	st := rc.cur.Load()
	if st == nil || r.Header.Get(runHeader) != st.id {
		rc.stray.Add(1)
		return // 200: the sender must not retry it into the next run
	}
	st.requests.Add(1)
	seq, sent, ok := parseBody(buf)
	if !ok || seq < 0 || seq >= len(st.seen) {
		st.bad.Add(1)
		return
	}
	if st.seen[seq].Add(1) != 1 {
		st.dups.Add(1)
		return
	}
	if sent > 0 {
		st.lat[seq].Store(max(now-sent, 1))
	}
	casMin(&st.first, now)
	casMax(&st.last, now)
	st.count.Add(1)
}

func readBody(body io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func casMin(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if old != 0 && old <= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func casMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if old >= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func (rc *receiver) reset(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 || n > 50_000_000 || q.Get("run") == "" {
		http.Error(w, "bad reset", http.StatusBadRequest)
		return
	}
	rc.cur.Store(&runState{id: q.Get("run"), seen: make([]atomic.Uint32, n), lat: make([]atomic.Int64, n), cpu0: processCPU()})
	rc.stray.Store(0)
}

func (rc *receiver) stats(w http.ResponseWriter, r *http.Request) {
	st := rc.cur.Load()
	if st == nil || st.id != r.URL.Query().Get("run") {
		http.Error(w, "no such run", http.StatusNotFound)
		return
	}
	s := recvStats{
		Run: st.id, Count: st.count.Load(), Requests: st.requests.Load(), Dups: st.dups.Load(),
		Bad: st.bad.Load(), Stray: rc.stray.Load(), First: st.first.Load(), Last: st.last.Load(),
		CPU: int64(processCPU() - st.cpu0),
	}
	if r.URL.Query().Get("lat") == "1" {
		lat := make([]int64, 0, s.Count)
		for i := range st.lat {
			if v := st.lat[i].Load(); v > 0 {
				lat = append(lat, v)
			}
		}
		slices.Sort(lat)
		s.P50, s.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
		if len(lat) > 0 {
			s.Max = lat[len(lat)-1]
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// percentile returns the p-quantile of sorted values (nearest rank).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// control talks to the receiver's control endpoints from a child process.
type control struct {
	base   string
	client *http.Client
}

func newControl(base string) *control {
	return &control{base: base, client: &http.Client{Timeout: 30 * time.Second}}
}

// reset starts a run expecting sequence numbers 0..n-1.
func (c *control) reset(run string, n int) error {
	u := fmt.Sprintf("%s/_reset?run=%s&n=%d", c.base, url.QueryEscape(run), n)
	resp, err := c.client.Post(u, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("reset: %s: %s", resp.Status, b)
	}
	return nil
}

// stats fetches the run's counters; withLatency also computes percentiles.
func (c *control) stats(run string, withLatency bool) (recvStats, error) {
	u := fmt.Sprintf("%s/_stats?run=%s", c.base, url.QueryEscape(run))
	if withLatency {
		u += "&lat=1"
	}
	var s recvStats
	resp, err := c.client.Get(u)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return s, fmt.Errorf("stats: %s: %s", resp.Status, b)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// waitFor polls until at least n distinct arrivals, or until none has
// come for stall, then returns the stats with latency percentiles.
func (c *control) waitFor(run string, n int64, stall time.Duration) (recvStats, error) {
	lastCount, lastChange := int64(-1), time.Now()
	for {
		s, err := c.stats(run, false)
		if err != nil {
			return s, err
		}
		if s.Count >= n {
			break
		}
		if s.Count != lastCount {
			lastCount, lastChange = s.Count, time.Now()
		} else if time.Since(lastChange) > stall {
			s, _ = c.stats(run, true)
			return s, fmt.Errorf("run %s: %d of %d delivered, none for %v", run, s.Count, n, stall)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c.stats(run, true)
}
