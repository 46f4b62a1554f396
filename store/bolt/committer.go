package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// op is one write operation waiting for the committer.
type op struct {
	ctx context.Context
	// fn does the work inside the batch transaction. It must read and check
	// everything it needs before its first write, write only through w, and
	// set its results afresh on every run: a batch may run again after
	// another operation failed.
	fn func(w *wtx) error
	// alone makes the operation run in a transaction of its own, exactly
	// once: Update runs the caller's function this way, since it writes
	// without going through wtx and may not expect to run twice.
	alone bool
	// committed, when set, is called on the committer goroutine after the
	// operation's transaction committed.
	committed func()

	// Set by the committer before done is closed.
	err      error
	panicked any
	done     chan struct{}
}

// wtx is the write transaction of a batch. Writes go through it so the
// committer knows whether a failing operation wrote anything.
type wtx struct {
	*bbolt.Tx
	dirty bool
	// counts holds the changes to bucketCounts made by the batch so far,
	// written once when the batch is done.
	counts map[string]int64
	// wake is set by InsertEventTx when it stored due work.
	wake bool
	// endpoints holds the endpoints Record changed in the batch so far, by
	// ID, as they are to be stored: written once when the batch is done or
	// when another operation is about to read or change an endpoint by
	// other means (see flushEndpoints), so that a batch of records for one
	// endpoint reads, decodes and writes it once.
	endpoints map[string]*batchEndpoint
}

// batchEndpoint is an endpoint changed by Record in the batch, with its
// encoding.
type batchEndpoint struct {
	ep  *convoy.Endpoint
	enc []byte
}

// endpoint returns the endpoint with the ID as the batch has it so far:
// Record's latest version if it changed it, else as stored. The caller
// must not change what it gets; it copies before it changes.
func (w *wtx) endpoint(id string) (*convoy.Endpoint, error) {
	if be := w.endpoints[id]; be != nil {
		return be.ep, nil
	}
	return getEndpoint(w.Tx, id)
}

// setEndpoint makes ep, encoded as enc, the batch's version of the
// endpoint, to be written by flushEndpoints. It counts as a write of the
// operation.
func (w *wtx) setEndpoint(ep *convoy.Endpoint, enc []byte) {
	w.dirty = true
	if w.endpoints == nil {
		w.endpoints = make(map[string]*batchEndpoint)
	}
	w.endpoints[ep.ID] = &batchEndpoint{ep: ep, enc: enc}
}

// flushEndpoints writes the endpoints changed through setEndpoint and
// forgets them. An operation that reads or changes an endpoint other than
// through endpoint and setEndpoint calls it first; what it writes belongs
// to the operations that set them, so it does not mark the caller's
// operation as having written.
func (w *wtx) flushEndpoints() error {
	if len(w.endpoints) == 0 {
		return nil
	}
	b := w.Bucket(bucketEndpoints)
	for id, be := range w.endpoints {
		if err := b.Put([]byte(id), be.enc); err != nil {
			w.dirty = true // written in part: the batch must not commit
			return fmt.Errorf("convoy: bolt: put in %s: %w", bucketEndpoints, err)
		}
	}
	clear(w.endpoints)
	return nil
}

// count adds delta to the count of key in bucketCounts (see countDelivery
// and countEndpoint).
func (w *wtx) count(key string, delta int64) {
	w.dirty = true
	if w.counts == nil {
		w.counts = make(map[string]int64)
	}
	w.counts[key] += delta
}

// flushCounts writes the batch's count changes.
func (w *wtx) flushCounts() error {
	b := w.Bucket(bucketCounts)
	for k, d := range w.counts {
		if d == 0 {
			continue
		}
		var n int64
		if v := b.Get([]byte(k)); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(max(n+d, 0)))
		if err := b.Put([]byte(k), v); err != nil {
			return fmt.Errorf("convoy: bolt: put in %s: %w", bucketCounts, err)
		}
	}
	return nil
}

// present is the value of index entries, whose keys say everything.
// It is empty but not nil: bbolt's Get reports a key put with a nil value
// as missing until the transaction commits, so an operation later in the
// same batch would take an index entry for absent and leave it behind.
var present = []byte{}

// put stores v under k in bucket; a nil v is stored as present.
func (w *wtx) put(bucket, k, v []byte) error {
	w.dirty = true
	if v == nil {
		v = present
	}
	if err := w.Bucket(bucket).Put(k, v); err != nil {
		return fmt.Errorf("convoy: bolt: put in %s: %w", bucket, err)
	}
	return nil
}

func (w *wtx) del(bucket, k []byte) error {
	w.dirty = true
	if err := w.Bucket(bucket).Delete(k); err != nil {
		return fmt.Errorf("convoy: bolt: delete in %s: %w", bucket, err)
	}
	return nil
}

// errAbort rolls back a batch transaction after an operation failed halfway.
var errAbort = errors.New("convoy: bolt: batch aborted")

// errNothing rolls back a batch transaction in which no operation wrote:
// committing it would still write bbolt's meta page and freelist and wait
// for an fsync.
var errNothing = errors.New("convoy: bolt: nothing written")

// write queues fn for the committer and waits for its outcome. If ctx ends
// first it returns ctx.Err(), and fn may or may not have been committed.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	return s.run(ctx, &op{fn: fn})
}

// run queues o for the committer and waits for its outcome, as write does.
func (s *Store) run(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.ctx, o.done = ctx, make(chan struct{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed()
	}
	s.queue = append(s.queue, o)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		select {
		case <-o.done:
		default:
			return ctx.Err()
		}
	}
	if o.panicked != nil {
		panic(o.panicked)
	}
	return o.err
}

// commitLoop is the committer goroutine: it runs queued operations in
// batches until Close, then runs what is left and returns.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			// Close set s.closed under s.mu first, so the queue can only
			// shrink now.
			for s.flush() > 0 {
			}
			return
		}
		for n := s.flush(); n > 0; n = s.flush() {
			s.linger(n)
		}
	}
}

// linger lets the queue fill again after a batch of last operations
// under load: until it holds as many, or lingerMax passed. Every commit
// costs two fdatasyncs (data pages, then the meta page), whose time on
// these machines is largely CPU, so once commits follow each other with
// many operations each, a little wait for the callers still on their way
// (recorders, Sends) shares those syncs among more of them. Batches of
// fewer than lingerFrom operations (light load) never wait.
func (s *Store) linger(last int) {
	if last < lingerFrom {
		return
	}
	t := time.NewTimer(lingerMax)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n >= last {
			return
		}
		select {
		case <-s.wake: // another operation was queued
		case <-t.C:
			return
		case <-s.quit:
			return
		}
	}
}

// Committer lingering (see linger).
const (
	lingerFrom = 16
	lingerMax  = 500 * time.Microsecond
)

// flush runs one batch of queued operations and returns how many it ran.
func (s *Store) flush() int {
	s.mu.Lock()
	n := min(len(s.queue), s.opts.MaxBatchSize)
	if n == 0 {
		s.mu.Unlock()
		return 0
	}
	batch := slices.Clone(s.queue[:n])
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	s.mu.Unlock()
	shared := batch[:0]
	for _, o := range batch {
		if o.alone {
			s.commit([]*op{o})
		} else {
			shared = append(shared, o)
		}
	}
	s.commit(shared)
	return n
}

// commit runs batch in one transaction. An operation that fails before
// writing just reports its error; one that fails (or panics) after writing
// aborts the transaction, and the others run again without it.
func (s *Store) commit(batch []*op) {
	pending := batch[:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			close(o.done)
			continue
		}
		pending = append(pending, o)
	}
	for len(pending) > 0 {
		var bad *op
		err := s.db.Update(func(tx *bbolt.Tx) error {
			w := &wtx{Tx: tx}
			for _, name := range appendBuckets {
				tx.Bucket(name).FillPercent = appendFill
			}
			wrote := false
			for _, o := range pending {
				w.dirty = false
				o.run(w)
				if o.err != nil || o.panicked != nil {
					if w.dirty {
						bad = o
						return errAbort
					}
					continue
				}
				wrote = wrote || w.dirty
			}
			if !wrote {
				return errNothing
			}
			if err := w.flushEndpoints(); err != nil {
				return err
			}
			return w.flushCounts()
		})
		if bad != nil {
			close(bad.done)
			pending = slices.DeleteFunc(pending, func(o *op) bool { return o == bad })
			continue
		}
		if errors.Is(err, errNothing) {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("convoy: bolt: commit: %w", mapErr(err))
		}
		for _, o := range pending {
			if err != nil {
				o.err, o.panicked = err, nil
			}
			if err == nil && o.err == nil && o.panicked == nil && o.committed != nil {
				o.committed()
			}
			close(o.done)
		}
		return
	}
}

// run calls o.fn, catching a panic so the committer survives it; write
// re-raises it in the caller's goroutine.
func (o *op) run(w *wtx) {
	o.err, o.panicked = nil, nil
	defer func() {
		if r := recover(); r != nil {
			o.panicked = r
		}
	}()
	o.err = o.fn(w)
}
