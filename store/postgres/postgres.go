package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
)

// Store is a [convoy.Store] on PostgreSQL, shared safely by any number of
// processes. It also implements [convoy.TxInserter] for pgx.Tx (so
// [convoy.SendTx] works with it) and [convoy.Waker].
//
// A Store is safe for concurrent use. Values passed in are not retained
// and values returned are the store's own copies.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	opts    Options
	// ident is the quoted schema name; queries caches the store's SQL
	// with the schema filled in (see q).
	ident   string
	queries sync.Map
	log     *slog.Logger
	closed  atomic.Bool

	// The group committers of Record and Release, and of InsertEvent
	// (committer.go); quit stops them.
	records *committer
	inserts *committer
	reads   *committer
	// reading counts the first pages of ListEndpoints being read (see
	// runEndpointReads).
	reading atomic.Int32
	quit    chan struct{}

	// Wake-ups (wake.go). token is this Store's mark on the notifications
	// it sends outside a transaction, which its own subscribers need not
	// hear.
	token   string
	notifyC chan struct{}
	wmu     sync.Mutex
	callMu  sync.Mutex
	subs    map[uint64]func()
	nextSub uint64
	listen  *listener
	wg      sync.WaitGroup
	stop    chan struct{}

	// The analyzer (see analyze.go): deliveries inserted, the count at
	// which it is asked next (0: never again), and its wake-up.
	inserted  atomic.Int64
	analyzeAt atomic.Int64
	analyzeC  chan struct{}
	// The vacuum (see vacuum.go): deliveries recorded, the thresholds
	// (vacuumCheck and vacuumMin but in tests), and its wake-up.
	recordedN   atomic.Int64
	vacuumWakes atomic.Int64
	vacuumCheck int64
	vacuumMin   int64
	vacuumC     chan struct{}
	// vacuumMu serialises vacuumIfDead, which alone reads and sets the
	// wait after a VACUUM that removed nothing.
	vacuumMu   sync.Mutex
	vacuumWait time.Duration
	vacuumNext time.Time
}

var (
	_ convoy.Store              = (*Store)(nil)
	_ convoy.TxInserter[pgx.Tx] = (*Store)(nil)
	_ convoy.Waker              = (*Store)(nil)
)

// Options configures a Store. The zero value (or nil) gives the documented
// defaults.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables, so
	// they can live in the application's own database beside its tables.
	// It is used as a quoted identifier: 1 to 63 characters from
	// [A-Za-z0-9_], not starting with a digit or "pg_". Default "convoy".
	// The wake-up channel (LISTEN/NOTIFY) has the same name.
	Schema string
	// Migrate applies the pending migrations when the Store is made (see
	// [Store.Migrate]). Without it, New fails with ErrNotMigrated unless
	// the schema is up to date.
	Migrate bool
	// RecordBatch is the most Record and Release calls committed in one
	// transaction by the group committer. Zero means DefaultRecordBatch;
	// 1 turns group commit off: each call then commits its own
	// transaction, in the calling goroutine.
	RecordBatch int
	// InsertBatch is the most deliveries that InsertEvent calls made at
	// the same time store in one statement (an event with more is
	// stored alone). Zero means DefaultInsertBatch; 1 turns group commit
	// of InsertEvent off.
	InsertBatch int
	// NoVacuum leaves the deliveries table to autovacuum. By default the
	// store vacuums it itself once enough deliveries have gone through
	// that their dead index entries slow the claims down (see the package
	// documentation).
	NoVacuum bool
	// Logger receives the store's warnings (a lost listening connection).
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Batch sizes when Options gives none.
const (
	DefaultRecordBatch = 256
	DefaultInsertBatch = 2000
)

// DefaultSchema is Options.Schema when none is given.
const DefaultSchema = "convoy"

// ErrNotMigrated reports a schema whose migrations are not all applied:
// call Store.Migrate, or set Options.Migrate.
var ErrNotMigrated = errors.New("convoy: postgres: schema not migrated")

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.RecordBatch <= 0 {
		c.RecordBatch = DefaultRecordBatch
	}
	if c.InsertBatch <= 0 {
		c.InsertBatch = DefaultInsertBatch
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validSchema reports whether name is a schema name Options accepts.
func validSchema(name string) error {
	bad := len(name) == 0 || len(name) > 63 || strings.HasPrefix(strings.ToLower(name), "pg_") ||
		(name[0] >= '0' && name[0] <= '9')
	for i := 0; !bad && i < len(name); i++ {
		c := name[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_')
	}
	if bad {
		return fmt.Errorf("%w: postgres schema name %q", convoy.ErrInvalidConfig, name)
	}
	return nil
}

// New returns a Store on pool, which the caller keeps owning: Close does
// not close it. With opts.Migrate it applies pending migrations first;
// otherwise it checks that the schema is up to date.
func New(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", convoy.ErrInvalidConfig)
	}
	return newStore(ctx, pool, false, opts)
}

// Open connects to connString (a PostgreSQL URL or key=value string, as
// pgxpool.ParseConfig takes, pool settings such as pool_max_conns
// included) and returns a Store that owns the pool: Close closes it.
func Open(ctx context.Context, connString string, opts *Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres connection string: %v", convoy.ErrInvalidConfig, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("convoy: postgres: %w", err)
	}
	s, err := newStore(ctx, pool, true, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, own bool, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if err := validSchema(o.Schema); err != nil {
		return nil, err
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	s := &Store{
		pool:     pool,
		ownPool:  own,
		opts:     o,
		ident:    pgx.Identifier{o.Schema}.Sanitize(),
		log:      o.Logger,
		quit:     make(chan struct{}),
		token:    hex.EncodeToString(tok[:]),
		notifyC:  make(chan struct{}, 1),
		subs:     make(map[uint64]func()),
		stop:     make(chan struct{}),
		analyzeC: make(chan struct{}, 1),
		vacuumC:  make(chan struct{}, 1),

		vacuumCheck: vacuumCheck,
		vacuumMin:   vacuumMin,
	}
	s.analyzeAt.Store(analyzeFirst)
	if o.Migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkMigrated(ctx); err != nil {
		return nil, err
	}
	s.records = newCommitter(o.RecordBatch, nil, s.runRecords)
	s.inserts = newCommitter(o.InsertBatch, func(o *op) int { return max(1, len(o.ds)) }, s.runInserts)
	s.reads = newCommitter(maxReadBatch, nil, s.runEndpointReads)
	go s.records.loop(s.quit)
	go s.inserts.loop(s.quit)
	go s.reads.loop(s.quit)
	s.wg.Add(2)
	go s.notifyLoop()
	go s.analyzeLoop()
	return s, nil
}

// Schema returns the schema the store's tables are in.
func (s *Store) Schema() string { return s.opts.Schema }

// Close stops the store: queued Record, Release and InsertEvent calls are
// committed,
// the wake-up listener ends, and a pool made by Open is closed (a pool
// passed to New is not). Calls after Close return convoy.ErrClosed, and
// so does a second Close.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return convoy.ErrClosed
	}
	committers := []*committer{s.records, s.inserts, s.reads}
	for _, c := range committers {
		c.mu.Lock() // no call is queued after this
	}
	close(s.quit)
	for _, c := range committers {
		c.mu.Unlock()
	}
	for _, c := range committers {
		<-c.done
	}
	close(s.stop)
	s.wmu.Lock()
	l := s.listen
	s.listen = nil
	s.subs = map[uint64]func(){}
	s.wmu.Unlock()
	if l != nil {
		l.close()
	}
	s.wg.Wait()
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}

// check fails when ctx is done or the store closed.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return convoy.ErrClosed
	}
	return ctx.Err()
}

// q returns query with {s} replaced by the quoted schema name.
func (s *Store) q(query string) string {
	if v, ok := s.queries.Load(query); ok {
		return v.(string)
	}
	v := strings.ReplaceAll(query, "{s}", s.ident)
	s.queries.Store(query, v)
	return v
}

// tx runs fn in a READ COMMITTED transaction and commits it.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return s.wrap(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.wrap(err)
	}
	return nil
}

// wrap marks a driver error as the store's.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%w (%v)", convoy.ErrClosed, err)
	}
	return fmt.Errorf("convoy: postgres: %w", err)
}

// pgErr returns the PostgreSQL error code and constraint of err.
func pgErr(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// Error codes the store tells apart.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeDeadlock            = "40P01"
	codeSerialization       = "40001"
)

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrNotFound, kind, id)
}

func duplicate(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrDuplicate, kind, id)
}

// batchTimeout bounds one transaction the store runs on its own behalf
// (a group commit, a notification), whoever waits for it.
const batchTimeout = 30 * time.Second
