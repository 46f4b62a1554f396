package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// scaleResult is what the scale children report.
type scaleResult struct {
	// scale-fill
	Events     int64         `json:"events,omitempty"`
	InsertTime time.Duration `json:"insert_time,omitempty"`
	FileSize   int64         `json:"file_size,omitempty"`

	// scale-open
	OpenTime        time.Duration `json:"open_time,omitempty"`
	FirstClaim      time.Duration `json:"first_claim,omitempty"`
	ClaimMedian     time.Duration `json:"claim_median,omitempty"`
	ClaimP90        time.Duration `json:"claim_p90,omitempty"`
	EmptyMedian     time.Duration `json:"empty_median,omitempty"`
	EmptyP90        time.Duration `json:"empty_p90,omitempty"`
	Claims          int           `json:"claims,omitempty"`
	DueClaimed      int           `json:"due_claimed,omitempty"`
	BigClaim        time.Duration `json:"big_claim,omitempty"`
	BigClaimN       int           `json:"big_claim_n,omitempty"`
	RSSAfterClaims  int64         `json:"rss_after_claims,omitempty"`
	AnonAfterClaims int64         `json:"anon_after_claims,omitempty"`
	FileAfterClaims int64         `json:"file_after_claims,omitempty"`
	AnonAfterBig    int64         `json:"anon_after_big,omitempty"`
	FileAfterBig    int64         `json:"file_after_big,omitempty"`
	AnonAfterDrain  int64         `json:"anon_after_drain,omitempty"`
	FileAfterDrain  int64         `json:"file_after_drain,omitempty"`
	PageSize        int           `json:"page_size,omitempty"`
	FreePages       int           `json:"free_pages,omitempty"`
	FreelistBytes   int           `json:"freelist_bytes,omitempty"`
	Drained         int64         `json:"drained,omitempty"`
	DrainPerSec     float64       `json:"drain_per_sec,omitempty"`
	FileSizeAtStart int64         `json:"file_size_at_start,omitempty"`
}

// scaleReport is the parent's view of the scale run.
type scaleReport struct {
	fill, open *childResult
}

// scaleDue is how many deliveries are made due for the claim-latency test.
const scaleDue = 5

func scalePath(o *options) string { return filepath.Join(o.dir, "scale", "convoy.db") }

// runScale runs the scale run in two children: one fills the store and
// exits, a second opens it again (the restart) and measures.
func runScale(ctx context.Context, o *options, stderr io.Writer) (*scaleReport, []string) {
	var errs []string
	rep := &scaleReport{}
	if err := os.MkdirAll(filepath.Dir(scalePath(o)), 0o700); err != nil {
		return rep, []string{"scale: " + err.Error()}
	}
	defer os.RemoveAll(filepath.Dir(scalePath(o)))
	res, err := spawn(ctx, o, "scale-fill", stderr)
	rep.fill = res
	if err != nil {
		return rep, append(errs, err.Error())
	}
	res, err = spawn(ctx, o, "scale-open", stderr)
	rep.open = res
	if err != nil {
		errs = append(errs, err.Error())
	}
	return rep, errs
}

// scaleDueAt spreads the scheduled deliveries over the hour that starts an
// hour from base, in an order unrelated to insertion.
func scaleDueAt(base time.Time, i int) time.Time {
	return base.Add(time.Hour + time.Duration((i*7919)%3600)*time.Second + time.Duration(i%1000)*time.Millisecond)
}

// runScaleFill creates the app and endpoint and inserts o.scaleN events,
// one delivery each, scheduled 1 to 2 hours ahead, straight through
// Store.InsertEvent from o.scaleWriters goroutines (Send would make them
// due now).
func runScaleFill(ctx context.Context, o *options, _ *control) (*childResult, error) {
	res := &childResult{Scale: &scaleResult{}}
	path := scalePath(o)
	st, err := bolt.Open(path, nil)
	if err != nil {
		return res, err
	}
	defer st.Close()
	d, err := convoy.New(dispatcherConfig(o, st)) // not started: management only
	if err != nil {
		return res, err
	}
	app, ep, err := newTarget(ctx, d, o.receiver, o.runID+"-scale")
	if err != nil {
		return res, err
	}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	now := time.Now()
	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	step := max(o.scaleN/10, 1)
	for range o.scaleWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.scaleN {
					return
				}
				ev, dl := scaleEvent(app, ep, tmpl, i, now, scaleDueAt(now, i))
				if _, err := st.InsertEvent(ctx, ev, []*convoy.Delivery{dl}); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if n := done.Add(1); o.scaleN >= 100_000 && n%int64(step) == 0 {
					fmt.Fprintf(os.Stderr, "bench: scale: %d of %d inserted (%.0fs)\n", n, o.scaleN, time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	res.Scale.InsertTime = time.Since(start)
	res.Scale.Events = done.Load()
	if firstErr != nil {
		return res, fmt.Errorf("scale insert: %w", firstErr)
	}
	if err := st.Close(); err != nil {
		return res, err
	}
	if fi, err := os.Stat(path); err == nil {
		res.Scale.FileSize = fi.Size()
	}
	return res, nil
}

// scaleEvent builds event i with one delivery to ep due at due.
func scaleEvent(app *convoy.App, ep *convoy.Endpoint, tmpl []byte, i int, now, due time.Time) (*convoy.Event, *convoy.Delivery) {
	ev := &convoy.Event{
		ID: convoy.NewID(), AppID: app.ID, Type: eventType,
		Data: makeBody(tmpl, i, 0), CreatedAt: now,
	}
	dl := &convoy.Delivery{
		ID: convoy.NewID(), EventID: ev.ID, AppID: app.ID, EndpointID: ep.ID, EventType: eventType,
		Status: convoy.DeliveryScheduled, NextAttemptAt: due, CreatedAt: now, UpdatedAt: now,
	}
	return ev, dl
}

// offsetClock is the system clock moved ahead by a fixed offset, so a
// dispatcher finds the future schedule due; its timers run in real time.
type offsetClock struct{ off time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(c.off) }
func (c offsetClock) NewTimer(d time.Duration) convoy.Timer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// runScaleOpen is the restart: it opens the filled store in a new process
// and measures the first claim, claim latency against an empty store, RSS,
// the file size, and a sample drained through a dispatcher.
func runScaleOpen(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{Scale: &scaleResult{}}
	sr := res.Scale
	path := scalePath(o)
	if fi, err := os.Stat(path); err == nil {
		sr.FileSizeAtStart = fi.Size()
	}
	if o.scaleCold {
		if err := evictFromCache(path); err != nil {
			return res, fmt.Errorf("evict the file from the page cache: %w", err)
		}
	}
	owner := convoy.NewID()
	req := func(now time.Time, limit int) convoy.ClaimRequest {
		return convoy.ClaimRequest{Now: now, Limit: limit, Owner: owner, Lease: time.Minute, PerEndpoint: o.concurrency}
	}

	t0 := time.Now()
	st, err := bolt.Open(path, nil)
	if err != nil {
		return res, err
	}
	defer st.Close()
	sr.OpenTime = time.Since(t0)
	ds, err := st.Claim(ctx, req(time.Now(), 10))
	sr.FirstClaim = time.Since(t0)
	if err != nil {
		return res, fmt.Errorf("first claim: %w", err)
	}
	if err := releaseAll(ctx, st, ds); err != nil {
		return res, err
	}

	apps, _, err := st.ListApps(ctx, convoy.Page{Limit: 1})
	if err != nil || len(apps) == 0 {
		return res, fmt.Errorf("scale: no app in the store (%v)", err)
	}
	eps, _, err := st.ListEndpoints(ctx, apps[0].ID, convoy.Page{Limit: 1})
	if err != nil || len(eps) == 0 {
		return res, fmt.Errorf("scale: no endpoint in the store (%v)", err)
	}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	if err := addDue(ctx, st, apps[0], eps[0], tmpl, o.scaleN); err != nil {
		return res, err
	}
	lat, got, err := claimLatency(ctx, st, req, o.scaleClaims)
	if err != nil {
		return res, err
	}
	sr.Claims, sr.DueClaimed = len(lat), got
	sr.ClaimMedian, sr.ClaimP90 = quantile(lat, 0.5), quantile(lat, 0.9)
	sr.RSSAfterClaims = currentRSS()
	sr.AnonAfterClaims, sr.FileAfterClaims = rssSplit()

	// The same on an empty store: the app, the endpoint and the due few.
	emptyDir, err := os.MkdirTemp(filepath.Dir(path), "empty-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(emptyDir)
	elat, err := emptyClaimLatency(ctx, o, filepath.Join(emptyDir, "convoy.db"), tmpl, req)
	if err != nil {
		return res, err
	}
	sr.EmptyMedian, sr.EmptyP90 = quantile(elat, 0.5), quantile(elat, 0.9)

	// Make everything due (Now two hours ahead) and claim a page of it.
	t1 := time.Now()
	breq := req(time.Now().Add(2*time.Hour), 1000)
	breq.PerEndpoint = 0 // one endpoint: a per-endpoint cap would stop at o.concurrency
	big, err := st.Claim(ctx, breq)
	sr.BigClaim, sr.BigClaimN = time.Since(t1), len(big)
	if err != nil {
		return res, fmt.Errorf("claim at +2h: %w", err)
	}
	if err := releaseAll(ctx, st, big); err != nil {
		return res, err
	}
	sr.AnonAfterBig, sr.FileAfterBig = rssSplit()

	// Drain a sample through a dispatcher whose clock runs 2 h ahead.
	run := o.runID + "-scale"
	if err := ctl.reset(run, o.scaleN+scaleDue+1); err != nil {
		return res, err
	}
	cfg := dispatcherConfig(o, st)
	cfg.Clock = offsetClock{2 * time.Hour}
	d, err := convoy.New(cfg)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := d.Start(ctx); err != nil {
		return res, err
	}
	rs, werr := ctl.waitFor(run, int64(o.scaleSample), o.drainTimeout)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	_ = d.Close(cctx)
	cancel()
	sr.AnonAfterDrain, sr.FileAfterDrain = rssSplit()
	sr.Drained = rs.Count
	if el := time.Duration(rs.Last - start.UnixNano()); el > 0 {
		sr.DrainPerSec = float64(rs.Count) / el.Seconds()
	}
	if err := st.Close(); err != nil && !errors.Is(err, convoy.ErrClosed) {
		return res, err
	}
	if fi, err := os.Stat(path); err == nil {
		sr.FileSize = fi.Size()
	}
	if err := freelistStats(path, sr); err != nil {
		res.Notes = append(res.Notes, "freelist stats: "+err.Error())
	}
	return res, werr
}

// freelistStats opens the closed store file with bbolt itself and reads
// the size of its freelist, which bbolt writes on every commit unless
// NoFreelistSync is set.
func freelistStats(path string, sr *scaleResult) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer db.Close()
	st := db.Stats()
	sr.PageSize, sr.FreePages, sr.FreelistBytes = db.Info().PageSize, st.FreePageN, st.FreelistInuse
	return nil
}

// evictFromCache asks the kernel to drop the file's pages from the page
// cache (they are clean: the store was closed), as after a reboot.
func evictFromCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// addDue inserts scaleDue events whose deliveries are due now.
func addDue(ctx context.Context, st convoy.Store, app *convoy.App, ep *convoy.Endpoint, tmpl []byte, seq0 int) error {
	now := time.Now()
	for i := range scaleDue {
		ev, dl := scaleEvent(app, ep, tmpl, seq0+i, now, now.Add(-time.Second))
		if _, err := st.InsertEvent(ctx, ev, []*convoy.Delivery{dl}); err != nil {
			return fmt.Errorf("insert due: %w", err)
		}
	}
	return nil
}

// claimLatency times n claims of 10 (releasing what each took, untimed)
// and returns the durations and how many deliveries the claims took.
func claimLatency(ctx context.Context, st convoy.Store, req func(time.Time, int) convoy.ClaimRequest, n int) ([]time.Duration, int, error) {
	lat := make([]time.Duration, 0, n)
	got := 0
	for range n {
		t := time.Now()
		ds, err := st.Claim(ctx, req(time.Now(), 10))
		lat = append(lat, time.Since(t))
		if err != nil {
			return lat, got, fmt.Errorf("claim: %w", err)
		}
		got += len(ds)
		if err := releaseAll(ctx, st, ds); err != nil {
			return lat, got, err
		}
	}
	return lat, got, nil
}

func emptyClaimLatency(ctx context.Context, o *options, path string, tmpl []byte, req func(time.Time, int) convoy.ClaimRequest) ([]time.Duration, error) {
	st, err := bolt.Open(path, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	d, err := convoy.New(dispatcherConfig(o, st))
	if err != nil {
		return nil, err
	}
	app, ep, err := newTarget(ctx, d, o.receiver, "empty")
	if err != nil {
		return nil, err
	}
	if err := addDue(ctx, st, app, ep, tmpl, 0); err != nil {
		return nil, err
	}
	lat, _, err := claimLatency(ctx, st, req, o.scaleClaims)
	return lat, err
}

func releaseAll(ctx context.Context, st convoy.Store, ds []*convoy.Delivery) error {
	for _, dl := range ds {
		if err := st.Release(ctx, dl.ID, dl.LeaseID); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	return nil
}

// quantile returns the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
