package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wake-ups cross processes through LISTEN/NOTIFY on a channel named
// after the schema.
//
// Sending: InsertEventTx notifies inside the caller's transaction, so
// the notification goes out when, and only if, it commits. Everything
// else that makes work due (InsertEvent, Requeue, a Record to Retry, a
// Release) commits first and then asks the notifier goroutine for a
// NOTIFY of its own: those requests are coalesced, at most one
// notification in flight per store, because PostgreSQL serialises the
// commits of notifying transactions. They carry the store's token, so
// its own subscribers, whose Dispatcher knows already, ignore them.
//
// Receiving: the first SubscribeWake opens a dedicated connection (from
// the pool's configuration, outside the pool) that LISTENs and calls the
// subscribers on every notification. When it is lost the store
// reconnects with backoff, and calls the subscribers once LISTEN is back,
// since a notification may have been missed meanwhile.

// wakeOthers asks the notifier for a wake-up of the other processes.
func (s *Store) wakeOthers() {
	select {
	case s.notifyC <- struct{}{}:
	default: // one is pending already, and will cover this one
	}
}

// minNotifyInterval spaces the notifier's wake-ups: a busy store sends
// about 200 a second, not one per commit, and a subscriber hears of new
// work at most that much later.
const minNotifyInterval = 5 * time.Millisecond

// notifyLoop is the notifier goroutine.
func (s *Store) notifyLoop() {
	defer s.wg.Done()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.notifyC:
		}
		select {
		case <-s.stop:
			return
		case <-pause.C:
		}
		pause.Reset(minNotifyInterval)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.opts.Schema, s.token)
		cancel()
		if err != nil && !s.closed.Load() {
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "convoy: postgres: wake-up notification failed; other processes will poll",
				slog.String("schema", s.opts.Schema), slog.String("error", err.Error()))
		}
	}
}

// SubscribeWake implements [convoy.Waker]: fn is called, from the
// store's listening goroutine, whenever another process (or a
// transaction of InsertEventTx, from any process) may have made work due.
// fn must not block, and must not call the returned unsubscribe function
// itself. After Close it is never called.
func (s *Store) SubscribeWake(fn func()) (unsubscribe func()) {
	if fn == nil {
		return func() {}
	}
	s.wmu.Lock()
	if s.closed.Load() {
		s.wmu.Unlock()
		return func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	if s.listen == nil {
		s.listen = s.startListener()
	}
	s.wmu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			// callMu waits out a call in progress: after this returns, fn
			// is not called again.
			s.callMu.Lock()
			defer s.callMu.Unlock()
			s.wmu.Lock()
			delete(s.subs, id)
			s.wmu.Unlock()
		})
	}
}

// fire calls the subscribers.
func (s *Store) fire() {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.wmu.Lock()
	fns := make([]func(), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.wmu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// listener is the LISTENing goroutine.
type listener struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *listener) close() {
	l.cancel()
	<-l.done
}

func (s *Store) startListener() *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		s.listenLoop(ctx)
	}()
	return l
}

// Reconnection backoff of the listener.
const (
	minListenBackoff = 50 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

func (s *Store) listenLoop(ctx context.Context) {
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		listened, err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			wait = 0 // it worked for a while: try again at once
		} else {
			wait = min(max(2*wait, minListenBackoff), maxListenBackoff)
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "convoy: postgres: wake-up listener lost its connection; reconnecting",
			slog.String("schema", s.opts.Schema), slog.String("error", err.Error()), slog.Duration("retry_in", wait))
	}
}

// listenOnce connects, LISTENs and calls the subscribers until the
// connection fails or ctx ends. It reports whether LISTEN was reached.
func (s *Store) listenOnce(ctx context.Context) (bool, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "convoy-listen:" + s.opts.Schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+s.ident); err != nil {
		return false, err
	}
	s.fire() // work may have become due while nothing listened
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if n.Payload != s.token {
			s.fire()
		}
	}
}
