// Package bolt is a convoy.Store kept in one bbolt file: the durable queue
// for a single process that must not lose webhooks across restarts.
//
// # Layout
//
// Each kind of record (apps, endpoints, events, deliveries, attempts) has a
// bucket keyed by ID; index buckets with composite keys give the other
// access paths: an app's endpoints, an event's deliveries, an endpoint's
// and an app's deliveries by status class, an app's idempotency keys, a
// delivery's attempts by Number, events by creation time (all events, an
// app's, a type's, an app's of a type: the four indexes ListEvents
// chooses from), and the due index: one key per claimable delivery
// (Scheduled or Retry at NextAttemptAt, Processing at LeaseExpiresAt),
// made of its due time (8 bytes, big-endian) and its ID. Claim walks the
// due index from its start while the time is not after now, so it costs
// O(log n + k) whatever the size of the backlog, and NextDue reads its
// first key. When Claim passes over due entries because their endpoint is
// at its per-endpoint cap, it parks them: moves them to a list per
// endpoint, with an index of endpoints by earliest parked time, so later
// Claims step over a full endpoint in one move and a slow endpoint's
// backlog does not hide other endpoints' work; once the endpoint has room
// its parked entries are merged back in due order. Parking writes only
// when endpoints are full: claiming, recording and releasing otherwise
// touch the delivery, the due index and a counter. The delivery indexes
// group the pending statuses in one range for the same reason. A meta
// bucket holds the schema version, checked on Open; Open migrates a file
// of an older version.
//
// Keys use the IDs' canonical text, so every composite key splits at fixed
// offsets and sorts like the IDs; times in keys are Unix nanoseconds with
// the sign bit flipped, clamped to the years 1678 to 2262. An event type,
// the only key part of variable length, is followed by a zero byte, which
// sorts before every character a type may hold, so one type's keys form
// one range; the time and ID after it sit at fixed offsets from the key's
// end. Lists that run newest first (events, deliveries, attempts) walk
// their index backwards, and their cursors name the last key returned.
// Records are encoded by small encode and decode functions in a compact
// binary form (see binary.go): IDs as their 16 bytes, and a delivery's
// lease in a block of fixed size, so that claiming and recording do not
// grow the record and split its page. The forms of older schema versions
// are still read, so records need not be rewritten when the format
// changes.
//
// # Group commit
//
// All writes go through one committer goroutine, which runs every operation
// queued at the time (up to Options.MaxBatchSize) in one bbolt transaction:
// many concurrent callers share one fsync. Under load (a batch of 16
// operations or more) the committer waits up to half a millisecond for
// the queue to hold as many again before the next batch, so that the
// callers still on their way share its fsync too; at light load it never
// waits. An operation that fails does not affect the others of its
// batch: operations check everything before they write, and when one
// fails after writing the transaction is rolled back and the rest of the
// batch runs again without it. A batch in which no operation wrote is
// rolled back instead of committed, so it costs no fsync; Claim goes
// further and looks for due work in a read-only transaction before it
// queues. Reads run in their own read-only transactions, concurrently
// with the committer.
//
// A caller whose context ends while its write waits for the committer gets
// ctx.Err(); the write may still have happened (if the committer had already
// taken it) or not. A Claim abandoned that way leaves its deliveries leased
// until their lease expires, when they are claimable again.
//
// # The application's own data
//
// An application may keep its own buckets in the store's file and write
// them together with events: Update runs its function as one operation of
// the committer, in a transaction of its own, and InsertEventTx (which
// convoy.SendTx calls) inserts an event in that transaction, so both
// commit or roll back together.
//
// # Space
//
// Deleting records frees pages inside the file, which later writes reuse,
// but the file does not shrink: it keeps the size of the most it ever held.
// Compact writes a copy of a closed store file holding only the live data.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the file layout this package reads and
// writes. Open migrates a file of version 1 (convoy v0.1.0) and refuses any
// other version. Version 2 added the event indexes of ListEvents and the
// app index of deliveries.
const SchemaVersion = 2

// Errors returned by Open, besides those of the convoy package.
var (
	// ErrLocked reports that Open could not get the file lock within
	// Options.Timeout: another Store (in this process or another one) has
	// the file open.
	ErrLocked = errors.New("convoy: bolt: database file is locked by another store")
	// ErrSchemaVersion reports a file written with a schema version this
	// package does not know (a newer release, or not a convoy file).
	ErrSchemaVersion = errors.New("convoy: bolt: unsupported schema version")
)

// Options configures Open. The zero value (or a nil *Options) gives the
// documented defaults.
type Options struct {
	// Timeout is how long Open waits for the exclusive file lock before it
	// fails with ErrLocked. Zero means 1 second; negative means wait
	// indefinitely.
	Timeout time.Duration
	// FileMode is the permission of a newly created file. Zero means 0600.
	FileMode os.FileMode
	// MaxBatchSize caps how many queued write operations the committer runs
	// in one transaction. Zero means 1024.
	MaxBatchSize int
	// MaxClaimSkip bounds how many due deliveries one Claim passes over
	// (and parks) because their endpoint is at its ClaimRequest.PerEndpoint
	// cap. Zero means 1024.
	MaxClaimSkip int
	// InitialMmapSize is the initial size of bbolt's memory map in bytes
	// (see bbolt.Options). Zero means bbolt's default.
	InitialMmapSize int
}

// Defaults of Options.
const (
	// DefaultTimeout is the default Options.Timeout.
	DefaultTimeout = time.Second
	// DefaultFileMode is the default Options.FileMode.
	DefaultFileMode = os.FileMode(0o600)
	// DefaultMaxBatchSize is the default Options.MaxBatchSize.
	DefaultMaxBatchSize = 1024
	// DefaultMaxClaimSkip is the default Options.MaxClaimSkip.
	DefaultMaxClaimSkip = 1024
)

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch {
	case r.Timeout == 0:
		r.Timeout = DefaultTimeout
	case r.Timeout < 0:
		r.Timeout = 0 // bbolt: wait indefinitely
	}
	if r.FileMode == 0 {
		r.FileMode = DefaultFileMode
	}
	if r.MaxBatchSize == 0 {
		r.MaxBatchSize = DefaultMaxBatchSize
	}
	if r.MaxClaimSkip == 0 {
		r.MaxClaimSkip = DefaultMaxClaimSkip
	}
	if r.MaxBatchSize < 0 || r.MaxClaimSkip < 0 || r.InitialMmapSize < 0 {
		return r, fmt.Errorf("%w: bolt: negative option", convoy.ErrInvalidConfig)
	}
	return r, nil
}

// Store is a convoy.Store backed by one bbolt file. It is safe for
// concurrent use. Open it with Open and release it with Close.
type Store struct {
	db   *bbolt.DB
	opts Options

	mu     sync.Mutex // guards queue and closed
	queue  []*op
	closed bool

	inTx   currentTx // the transaction of the Update running
	wakers wakers    // subscribed with SubscribeWake

	closedFlag atomic.Bool   // closed, for reads that do not take mu
	repairs    atomic.Int64  // stale index entries Claim removed
	wake       chan struct{} // a write was queued (capacity 1)
	quit       chan struct{} // closed by Close
	stopped    chan struct{} // closed when the committer returns
}

var _ convoy.Store = (*Store)(nil)

// Open opens (creating it if needed) the store file at path. It fails with
// ErrLocked when another Store holds the file past opts.Timeout, and with
// ErrSchemaVersion when the file has an unknown schema version. opts may
// be nil.
//
// Open walks the file's pages to rebuild bbolt's list of free pages, which
// the store does not write on every commit: that takes about 0.2 s for a
// file of 200,000 events.
//
// A file written by convoy v0.1.0 (schema version 1) is migrated first:
// Open reads every event and delivery once to build the indexes version 2
// added, in transactions of 10,000 records, which takes about a second per
// million records. Once migrated, the file cannot be opened by v0.1.0
// anymore; an interrupted migration is started again by the next Open.
func Open(path string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, o.FileMode, &bbolt.Options{
		Timeout:      o.Timeout,
		FreelistType: bbolt.FreelistMapType,
		// Without it every commit writes the whole list of free pages,
		// which after a large DeleteBefore is hundreds of KiB per Send or
		// Record; Open rebuilds the list instead (see Open).
		NoFreelistSync:  true,
		InitialMmapSize: o.InitialMmapSize,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, o.Timeout)
		}
		return nil, fmt.Errorf("convoy: bolt: open %s: %w", path, err)
	}
	if err := openSchema(db); err != nil {
		_ = db.Close()
		if errors.Is(err, ErrSchemaVersion) {
			return nil, err
		}
		return nil, fmt.Errorf("convoy: bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		opts:    o,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// Close runs the writes already queued, stops the committer, waits for it
// and closes the file. Calls after Close, Close included, return an error
// wrapping convoy.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed()
	}
	s.closed = true
	s.closedFlag.Store(true)
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("convoy: bolt: close: %w", err)
	}
	return nil
}

func errClosed() error {
	return fmt.Errorf("%w: bolt store", convoy.ErrClosed)
}

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closedFlag.Load() {
		return errClosed()
	}
	return mapErr(s.db.View(fn))
}

// mapErr turns bbolt's errors into convoy's; others pass unchanged.
func mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: bolt store", convoy.ErrClosed)
	}
	return err
}

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrNotFound, kind, id)
}

func duplicate(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrDuplicate, kind, id)
}
