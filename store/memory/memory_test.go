package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
	"github.com/convoykit/convoy/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(tb testing.TB) convoy.Store {
	s := memory.New()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) convoy.Store { return newStore(t) })
}

func BenchmarkInsert(b *testing.B) {
	storetest.BenchmarkInsert(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

func BenchmarkClaim(b *testing.B) {
	storetest.BenchmarkClaim(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// BenchmarkClaimEvents: see storetest.BenchmarkClaimEvents.
func BenchmarkClaimEvents(b *testing.B) {
	storetest.BenchmarkClaimEvents(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// BenchmarkClaimOrdered runs the shared claim benchmark beside an ordered
// endpoint with 1,000 and 100,000 deliveries held back behind its head.
func BenchmarkClaimOrdered(b *testing.B) {
	storetest.BenchmarkClaimOrdered(b, func(b *testing.B) convoy.Store { return newStore(b) })
}
