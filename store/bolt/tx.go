package bolt

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

var (
	_ convoy.TxInserter[*bbolt.Tx] = (*Store)(nil)
	_ convoy.Waker                 = (*Store)(nil)
)

// Update runs fn in a write transaction on the store's file, so that an
// application keeping its own data in buckets of that file can write it
// and insert events (InsertEventTx, or convoy.SendTx) in one transaction:
// the event and its deliveries commit with the application's writes or
// vanish with them. It returns fn's error, after rolling everything back,
// or the commit's.
//
// fn runs as one operation of the store's committer, alone in its
// transaction and exactly once, on the committer's goroutine: other
// writes of the store wait while it runs, so keep it short. If ctx ends
// before fn starts, Update returns ctx.Err() and fn does not run; once fn
// runs, Update waits for it and for the commit.
//
// Inside fn, use tx only for the application's own buckets and pass it to
// InsertEventTx; do not create, change or delete the store's buckets
// (meta, counts, apps, endpoints, events, deliveries, attempts and those
// whose names start with "idx_"), and give yours names that cannot be
// taken for them, led by the application's name. fn must not call the
// store's other methods that write (they wait for the committer, which is
// running fn); the methods that read may be called but do not see fn's
// writes. Update is safe for concurrent use.
func (s *Store) Update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	var wake bool
	o := &op{alone: true}
	o.fn = func(w *wtx) error {
		wake = false
		if err := ctx.Err(); err != nil {
			return err // not started: nothing written
		}
		w.dirty = true // fn writes through tx, not w
		s.inTx.set(w)
		defer s.inTx.set(nil)
		err := fn(w.Tx)
		wake = w.wake
		return err
	}
	o.committed = func() {
		if wake {
			s.wakers.notify()
		}
	}
	return s.run(context.WithoutCancel(ctx), o)
}

// View runs fn in a read-only transaction on the store's file, for an
// application reading its own buckets (see Update). fn must not write,
// nor keep tx or the slices it returns after it returns. View is safe for
// concurrent use.
func (s *Store) View(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	return s.view(ctx, fn)
}

// InsertEventTx is InsertEvent inside tx, which must be the transaction of
// an Update of this store that is running: the event and its deliveries
// are written with the rest of tx, so a rollback leaves no trace and
// nothing is claimable before tx commits. When it commits, the store calls
// the functions subscribed with SubscribeWake if InsertEventTx stored a
// delivery that is Scheduled. Errors are InsertEvent's, and ErrInvalid
// for a tx that is not an Update's; they leave tx as it was.
func (s *Store) InsertEventTx(ctx context.Context, tx *bbolt.Tx, ev *convoy.Event, deliveries []*convoy.Delivery) (convoy.InsertResult, error) {
	if err := ctx.Err(); err != nil {
		return convoy.InsertResult{}, err
	}
	w := s.inTx.get()
	if w == nil || w.Tx != tx {
		return convoy.InsertResult{}, fmt.Errorf("%w: bolt: InsertEventTx needs the transaction of a running Update of the store", convoy.ErrInvalid)
	}
	in, err := prepareInsert(ev, deliveries)
	if err != nil {
		return convoy.InsertResult{}, err
	}
	res, err := in.apply(w)
	if err != nil {
		return convoy.InsertResult{}, err
	}
	if res.Inserted && slices.ContainsFunc(res.Deliveries, func(d *convoy.Delivery) bool {
		return d.Status == convoy.DeliveryScheduled
	}) {
		w.wake = true
	}
	return res, nil
}

// SubscribeWake arranges for fn to be called when a transaction of Update
// commits after InsertEventTx stored work that is due: the dispatcher's
// own wake-up on Send comes before that commit, when the work is not yet
// claimable. fn is called on the committer's goroutine and must not block.
// The returned function ends the subscription; after it returns fn is not
// called again.
func (s *Store) SubscribeWake(fn func()) (unsubscribe func()) {
	return s.wakers.add(fn)
}

// currentTx holds the write transaction of the Update running, if any.
type currentTx struct {
	mu sync.Mutex
	w  *wtx
}

func (c *currentTx) set(w *wtx) {
	c.mu.Lock()
	c.w = w
	c.mu.Unlock()
}

func (c *currentTx) get() *wtx {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w
}

// wakers are the functions subscribed with SubscribeWake.
type wakers struct {
	mu   sync.Mutex // held while calling them, so unsubscribe waits for a call
	next int
	fns  map[int]func()
}

func (ws *wakers) add(fn func()) func() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.fns == nil {
		ws.fns = make(map[int]func())
	}
	id := ws.next
	ws.next++
	ws.fns[id] = fn
	return func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		delete(ws.fns, id)
	}
}

func (ws *wakers) notify() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, fn := range ws.fns {
		fn()
	}
}
