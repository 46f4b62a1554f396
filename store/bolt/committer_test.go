package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/convoykit/convoy"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "convoy.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// holdCommitter makes the committer run an operation that blocks until the
// returned function is called, so that the operations queued meanwhile
// share the next batch.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		require.NoError(t, <-done)
	}
}

// waitQueued yields until n operations wait in the queue.
func waitQueued(s *Store, n int) {
	for {
		s.mu.Lock()
		l := len(s.queue)
		s.mu.Unlock()
		if l >= n {
			return
		}
		runtime.Gosched()
	}
}

func getKey(t *testing.T, s *Store, k string) []byte {
	t.Helper()
	var v []byte
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v = clone(tx.Bucket(bucketMeta).Get([]byte(k)))
		return nil
	}))
	return v
}

// TestBatchRollsBackHalfDoneOperation queues, in one batch, operations
// that succeed, one that fails before writing, one that fails after
// writing and one that panics after writing: only the successful writes
// are kept, and each caller gets its own outcome.
func TestBatchRollsBackHalfDoneOperation(t *testing.T) {
	s := openTest(t)
	release := holdCommitter(t, s)

	errBoom := errors.New("boom")
	type result struct {
		err      error
		panicked any
	}
	kinds := []string{"ok-1", "clean-fail", "dirty-fail", "ok-2", "dirty-panic", "ok-3"}
	results := make([]result, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { results[i].panicked = recover() }()
			results[i].err = s.write(context.Background(), func(w *wtx) error {
				switch kind {
				case "clean-fail":
					return errBoom
				case "dirty-fail":
					if err := w.put(bucketMeta, []byte(kind), []byte("x")); err != nil {
						return err
					}
					return errBoom
				case "dirty-panic":
					if err := w.put(bucketMeta, []byte(kind), []byte("x")); err != nil {
						return err
					}
					panic("kaboom")
				}
				return w.put(bucketMeta, []byte(kind), []byte("x"))
			})
		}()
		waitQueued(s, i+1)
	}
	release()
	wg.Wait()

	for i, kind := range kinds {
		switch kind {
		case "clean-fail", "dirty-fail":
			require.ErrorIs(t, results[i].err, errBoom, kind)
			require.Nil(t, getKey(t, s, kind), kind)
		case "dirty-panic":
			require.Equal(t, "kaboom", results[i].panicked)
			require.Nil(t, getKey(t, s, kind))
		default:
			require.NoError(t, results[i].err, kind)
			require.Nil(t, results[i].panicked, kind)
			require.Equal(t, []byte("x"), getKey(t, s, kind), kind)
		}
	}
}

// TestWriteContextCanceled checks that a caller whose context ends while
// its write waits gets ctx.Err(), and that the committer then skips the
// write.
func TestWriteContextCanceled(t *testing.T) {
	s := openTest(t)
	release := holdCommitter(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, func(w *wtx) error {
			return w.put(bucketMeta, []byte("canceled"), []byte("x"))
		})
	}()
	waitQueued(s, 1)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	release()

	// A later write commits after the canceled one was dropped.
	require.NoError(t, s.write(context.Background(), func(w *wtx) error {
		return w.put(bucketMeta, []byte("later"), []byte("x"))
	}))
	require.Nil(t, getKey(t, s, "canceled"))
}

// TestCloseRunsQueuedWrites checks that Close lets queued writes finish,
// then refuses new calls.
func TestCloseRunsQueuedWrites(t *testing.T) {
	s := openTest(t)
	path := s.db.Path()
	release := holdCommitter(t, s)

	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(w *wtx) error {
			return w.put(bucketMeta, []byte("queued"), []byte("x"))
		})
	}()
	waitQueued(s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	require.NoError(t, <-done)
	require.NoError(t, <-closed)

	ctx := context.Background()
	require.ErrorIs(t, s.Close(), convoy.ErrClosed)
	_, err := s.GetApp(ctx, convoy.NewID())
	require.ErrorIs(t, err, convoy.ErrClosed)
	require.ErrorIs(t, s.DeleteApp(ctx, convoy.NewID()), convoy.ErrClosed)

	s, err = Open(path, nil)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, []byte("x"), getKey(t, s, "queued"))
}
