package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// Backend opens the store of a run.
type Backend interface {
	// Name names the backend in the trace.
	Name() string
	// Open returns a fresh, empty store.
	Open(t testing.TB) (convoy.Store, error)
	// Reopen closes st and opens the same data again, as a process that
	// restarts after a crash; nil when the store outlives the processes
	// that use it (memory here, a database shared by several processes):
	// then a crash drops one dispatcher and the store lives on.
	Reopen(t testing.TB, st convoy.Store) (convoy.Store, error)
	// Restarts reports whether a crash is a restart of the process (and
	// Reopen is used).
	Restarts() bool
}

// Memory is the memory store, shared by the dispatchers of a run and by
// their successors after a crash.
type Memory struct{}

// Name implements Backend.
func (Memory) Name() string { return "memory" }

// Open implements Backend.
func (Memory) Open(testing.TB) (convoy.Store, error) { return memory.New(), nil }

// Reopen implements Backend: the memory store is never reopened.
func (Memory) Reopen(_ testing.TB, st convoy.Store) (convoy.Store, error) { return st, nil }

// Restarts implements Backend.
func (Memory) Restarts() bool { return false }

// Bolt is the bolt store on a file in Dir (a temporary directory of the
// test when empty): a crash takes down every dispatcher of the process
// and the file is opened again.
type Bolt struct {
	Dir string
}

// Name implements Backend.
func (Bolt) Name() string { return "bolt" }

func (b Bolt) path(t testing.TB) string {
	dir := b.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	return filepath.Join(dir, "sim.db")
}

// Open implements Backend.
func (b Bolt) Open(t testing.TB) (convoy.Store, error) {
	p := b.path(t)
	_ = os.Remove(p)
	st, err := bolt.Open(p, nil)
	if err != nil {
		return nil, err
	}
	return &boltStore{Store: st, path: p}, nil
}

// Reopen implements Backend.
func (Bolt) Reopen(_ testing.TB, st convoy.Store) (convoy.Store, error) {
	bs, ok := st.(*boltStore)
	if !ok {
		return nil, fmt.Errorf("sim: reopen: not a bolt store of the simulation")
	}
	if err := bs.Close(); err != nil {
		return nil, err
	}
	n, err := bolt.Open(bs.path, nil)
	if err != nil {
		return nil, err
	}
	return &boltStore{Store: n, path: bs.path}, nil
}

// Restarts implements Backend.
func (Bolt) Restarts() bool { return true }

type boltStore struct {
	*bolt.Store
	path string
}
