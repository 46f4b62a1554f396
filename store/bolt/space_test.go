package bolt_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

// payload returns a JSON object of about size bytes, like an event a
// billing system sends.
func payload(i, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"evt_%08d","object":"invoice","customer":"cus_%06d","currency":"eur","lines":[`, i, i%9973)
	for n := 0; b.Len() < size-40; n++ {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"plan-%03d","qty":%d,"amount":%d}`, n, n%7+1, (i*31+n*17)%100000)
	}
	fmt.Fprintf(&b, `],"total":%d}`, i%100000)
	return []byte(b.String())
}

// workload drives a store as the Dispatcher does: Send-like inserts of one
// event with one delivery, then claims and records of 1 to 3 attempts per
// delivery (the last one a success) with the headers and bodies a
// webhook attempt has, from several goroutines at once so that the
// committer batches as it does under load.
type workload struct {
	events      int
	payloadSize int
	// copyBody makes every attempt carry a copy of the request body, as
	// the Dispatcher did before v0.2 (now it records none: the event holds
	// it).
	copyBody bool
	// at is the creation time of event i.
	at func(i int) time.Time
}

func (wl workload) run(tb testing.TB, s *bolt.Store) (app *convoy.App, ep *convoy.Endpoint) {
	tb.Helper()
	ctx := context.Background()
	app = storetest.NewApp()
	require.NoError(tb, s.CreateApp(ctx, app))
	ep = storetest.NewEndpoint(app.ID)
	require.NoError(tb, s.CreateEndpoint(ctx, ep))
	at := wl.at
	if at == nil {
		base := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
		at = func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	}
	attemptsOf := map[string]int{}
	var mu sync.Mutex
	const workers = 32
	parallel(tb, workers, wl.events, func(i int) error {
		ev := storetest.NewEvent(app.ID, at(i))
		ev.Data = payload(i, wl.payloadSize)
		d := storetest.NewDelivery(ev, ep.ID)
		mu.Lock()
		attemptsOf[d.ID] = 1 + i%3
		mu.Unlock()
		_, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{d})
		return err
	})
	now := at(wl.events)
	for {
		claimed, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 256, Owner: "node-1", Lease: time.Minute})
		require.NoError(tb, err)
		if len(claimed) == 0 {
			return app, ep
		}
		parallel(tb, workers, len(claimed), func(i int) error {
			d := claimed[i]
			a := wl.attempt(d, ep, app, now)
			tr := convoy.Transition{DeliveryID: d.ID, LeaseID: d.LeaseID, Now: now, Attempt: a, Status: convoy.DeliverySuccess}
			if a.Number < attemptsOf[d.ID] {
				a.StatusCode, a.Error = http.StatusServiceUnavailable, "HTTP 503"
				a.ResponseBody = []byte(`{"error":"upstream unavailable, try again later"}`)
				tr.Status, tr.NextAttemptAt = convoy.DeliveryRetry, now
			}
			_, err := s.Record(ctx, tr)
			return err
		})
	}
}

// attempt returns a successful attempt of d with the request and response
// headers of a real one.
func (wl workload) attempt(d *convoy.Delivery, ep *convoy.Endpoint, app *convoy.App, now time.Time) *convoy.Attempt {
	n := d.Attempts + 1
	a := &convoy.Attempt{
		ID: convoy.NewID(), DeliveryID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, Number: n,
		URL: ep.URL, Method: http.MethodPost,
		RequestHeaders: http.Header{
			"Content-Type":         {"application/json"},
			"User-Agent":           {convoy.UserAgent},
			"Authorization":        {"Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
			"X-Convoy-Event-Id":    {d.EventID},
			"X-Convoy-Delivery-Id": {d.ID},
			"X-Convoy-Event-Type":  {d.EventType},
			"X-Convoy-Attempt":     {strconv.Itoa(n)},
			"X-Convoy-Signature":   {"t=1780272000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"},
		},
		StatusCode: http.StatusOK,
		ResponseHeaders: http.Header{
			"Content-Type":              {"application/json; charset=utf-8"},
			"Content-Length":            {"16"},
			"Date":                      {"Mon, 01 Jun 2030 12:00:00 GMT"},
			"Server":                    {"nginx/1.25.3"},
			"X-Request-Id":              {"req_8f3a2c1d9e7b4a60"},
			"Strict-Transport-Security": {"max-age=63072000"},
		},
		ResponseBody: []byte(`{"received":true}`),
		RemoteIP:     "203.0.113.7",
		StartedAt:    now,
		Duration:     42 * time.Millisecond,
	}
	if wl.copyBody {
		a.RequestBody = payload(0, wl.payloadSize)
	}
	_ = app
	return a
}

// parallel runs fn(0) … fn(n-1) on workers goroutines and fails tb with
// the first error.
func parallel(tb testing.TB, workers, n int, fn func(i int) error) {
	tb.Helper()
	var (
		wg   sync.WaitGroup
		next = make(chan int)
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	require.NoError(tb, <-errs)
}

// fileSpace is how a closed store file uses its bytes.
type fileSpace struct {
	file  int64               // the file's size
	used  int64               // the pages below bbolt's high-water mark, free ones included
	alloc int64               // bytes of the pages holding live keys and values
	inuse int64               // bytes of those pages in use
	data  int64               // the keys and values themselves
	per   map[string][2]int64 // bucket → alloc, inuse
}

func measure(tb testing.TB, path string) fileSpace {
	tb.Helper()
	fi, err := os.Stat(path)
	require.NoError(tb, err)
	sp := fileSpace{file: fi.Size(), per: map[string][2]int64{}}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	require.NoError(tb, err)
	defer db.Close()
	require.NoError(tb, db.View(func(tx *bbolt.Tx) error {
		sp.used = tx.Size()
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			st := b.Stats()
			in := int64(st.BranchInuse + st.LeafInuse + st.InlineBucketInuse)
			sp.inuse += in
			sp.alloc += int64(st.BranchAlloc + st.LeafAlloc)
			sp.per[string(name)] = [2]int64{int64(st.BranchAlloc + st.LeafAlloc), in}
			return b.ForEach(func(k, v []byte) error {
				sp.data += int64(len(k) + len(v))
				return nil
			})
		})
	}))
	return sp
}

// BenchmarkBytesPerDelivery reports the bytes on disk per delivery of a
// realistic history: events with a 1 KiB JSON payload, one delivery each,
// 1 to 3 attempts per delivery with real headers and a small response
// body. "copied" has every attempt carry a copy of the request body, as
// the Dispatcher recorded before v0.2; "none" is what it records now. The
// metrics: the file's size, the bytes of bbolt pages in use and the
// bytes of keys and values, each per delivery.
func BenchmarkBytesPerDelivery(b *testing.B) {
	const events = 4000
	for _, copyBody := range []bool{true, false} {
		name := "RequestBody=none"
		if copyBody {
			name = "RequestBody=copied"
		}
		b.Run(name, func(b *testing.B) {
			var sp fileSpace
			for range b.N {
				path := filepath.Join(b.TempDir(), "convoy.db")
				s, err := bolt.Open(path, nil)
				require.NoError(b, err)
				workload{events: events, payloadSize: 1024, copyBody: copyBody}.run(b, s)
				require.NoError(b, s.Close())
				sp = measure(b, path)
			}
			b.ReportMetric(float64(sp.file)/events, "file-B/delivery")
			b.ReportMetric(float64(sp.used)/events, "used-B/delivery")
			b.ReportMetric(float64(sp.alloc)/events, "pages-B/delivery")
			b.ReportMetric(float64(sp.inuse)/events, "inuse-B/delivery")
			b.ReportMetric(float64(sp.data)/events, "data-B/delivery")
			names := slices.Sorted(func(yield func(string) bool) {
				for k := range sp.per {
					if !yield(k) {
						return
					}
				}
			})
			for _, k := range names {
				if p := sp.per[k]; p[1] > 0 {
					b.Logf("%-28s %6.0f B/delivery in pages, %6.0f in use", k, float64(p[0])/events, float64(p[1])/events)
				}
			}
		})
	}
}

// history is what a store shows of its events: every event, newest first,
// with its deliveries and their attempts.
type history struct {
	Events     []*convoy.Event
	Deliveries map[string][]*convoy.Delivery
	Attempts   map[string][]*convoy.Attempt
}

func readHistory(t *testing.T, s *bolt.Store) history {
	t.Helper()
	ctx := context.Background()
	h := history{Deliveries: map[string][]*convoy.Delivery{}, Attempts: map[string][]*convoy.Attempt{}}
	for page := (convoy.Page{Limit: convoy.MaxPageSize}); ; {
		evs, next, err := s.ListEvents(ctx, convoy.EventQuery{}, page)
		require.NoError(t, err)
		h.Events = append(h.Events, evs...)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	for _, ev := range h.Events {
		ds, _, err := s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: ev.ID}, convoy.Page{})
		require.NoError(t, err)
		h.Deliveries[ev.ID] = ds
		for _, d := range ds {
			as, _, err := s.ListAttempts(ctx, d.ID, convoy.Page{})
			require.NoError(t, err)
			h.Attempts[d.ID] = as
		}
	}
	return h
}

// TestCompact fills a store, deletes 90% of its events, and compacts the
// file: the copy is a fraction of the original's size and holds exactly
// what is left, indexes included.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "convoy.db")
	s, err := bolt.Open(path, nil)
	require.NoError(t, err)
	const events = 1000
	base := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	workload{events: events, payloadSize: 1024, at: at}.run(t, s)
	for {
		n, err := s.DeleteBefore(ctx, at(events*9/10), convoy.DefaultDeleteBatch)
		require.NoError(t, err)
		if n < convoy.DefaultDeleteBatch {
			break
		}
	}
	before := readHistory(t, s)
	require.Len(t, before.Events, events/10)
	require.NoError(t, s.Close())

	_, err = os.Stat(path)
	require.NoError(t, err)
	compacted := filepath.Join(dir, "compacted.db")
	require.NoError(t, bolt.Compact(path, compacted, nil))
	from, to := measure(t, path), measure(t, compacted)
	t.Logf("%d events, 90%% deleted: %.1f MiB before, %.1f MiB compacted (live data %.1f MiB)",
		events, float64(from.file)/(1<<20), float64(to.file)/(1<<20), float64(to.data)/(1<<20))
	require.Less(t, to.file, from.file/4)
	require.Equal(t, from.data, to.data, "every key and value is copied")

	s = openAt(t, compacted)
	require.Equal(t, before, readHistory(t, s))
	// The copy is a working store: the queue and the indexes go on.
	app, _, err := s.ListApps(ctx, convoy.Page{})
	require.NoError(t, err)
	eps, _, err := s.ListEndpoints(ctx, app[0].ID, convoy.Page{})
	require.NoError(t, err)
	ev := storetest.NewEvent(app[0].ID, at(events))
	_, err = s.InsertEvent(ctx, ev, []*convoy.Delivery{storetest.NewDelivery(ev, eps[0].ID)})
	require.NoError(t, err)
	got, err := s.Claim(ctx, convoy.ClaimRequest{Now: at(events), Limit: 10, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// TestCompactRefuses checks that Compact leaves alone a file in use, a
// destination that exists and a file that is not a store.
func TestCompactRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "convoy.db")
	openAt(t, path)
	err := bolt.Compact(path, filepath.Join(dir, "copy.db"), &bolt.Options{Timeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, bolt.ErrLocked)
	_, err = os.Stat(filepath.Join(dir, "copy.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing left behind")

	exists := filepath.Join(dir, "exists.db")
	require.NoError(t, os.WriteFile(exists, []byte("keep me"), 0o600))
	other := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(other, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.ErrorIs(t, bolt.Compact(other, exists, nil), os.ErrExist)
	b, err := os.ReadFile(exists)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))
	require.ErrorIs(t, bolt.Compact(other, filepath.Join(dir, "x.db"), nil), bolt.ErrSchemaVersion)
	require.ErrorIs(t, bolt.Compact(filepath.Join(dir, "missing.db"), filepath.Join(dir, "y.db"), nil), os.ErrNotExist)
}

// BenchmarkCompact replays the report of a store that stayed large: 5,000
// events of 1 KiB (5 MB of payload), delivered with 1 to 3 attempts that
// carry a copy of the request body as before v0.2, then all deleted. It
// reports the file's size full, after the deletion, and compacted, and
// how long Compact took.
func BenchmarkCompact(b *testing.B) {
	const events = 5000
	ctx := context.Background()
	var full, emptied, compacted int64
	var took time.Duration
	for range b.N {
		dir := b.TempDir()
		path := filepath.Join(dir, "convoy.db")
		s, err := bolt.Open(path, nil)
		require.NoError(b, err)
		workload{events: events, payloadSize: 1024, copyBody: true}.run(b, s)
		require.NoError(b, s.Close())
		full = measure(b, path).file
		s, err = bolt.Open(path, nil)
		require.NoError(b, err)
		for {
			n, err := s.DeleteBefore(ctx, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), 0)
			require.NoError(b, err)
			if n < convoy.DefaultDeleteBatch {
				break
			}
		}
		require.NoError(b, s.Close())
		emptied = measure(b, path).file
		start := time.Now()
		require.NoError(b, bolt.Compact(path, filepath.Join(dir, "compacted.db"), nil))
		took = time.Since(start)
		compacted = measure(b, filepath.Join(dir, "compacted.db")).file
	}
	b.ReportMetric(float64(full)/(1<<20), "MiB-full")
	b.ReportMetric(float64(emptied)/(1<<20), "MiB-emptied")
	b.ReportMetric(float64(compacted)/(1<<20), "MiB-compacted")
	b.ReportMetric(float64(took.Microseconds())/1000, "ms-compact")
}
