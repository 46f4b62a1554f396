package convoy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// TestStatusChangesRacingCloseNeverPanic: management calls that fire hooks
// while Close stops the hook goroutine run the hook in place instead.
func TestStatusChangesRacingCloseNeverPanic(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.OnEndpointStatus = func(convoy.EndpointStatusEvent) { mu.Lock(); calls++; mu.Unlock() }
	})
	ep := b.endpoint(t, "https://example.com/", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st := []convoy.EndpointStatus{convoy.EndpointInactive, convoy.EndpointActive}
		for i := range 400 {
			_, err := b.d.SetEndpointStatus(ctx, ep.ID, st[i%2])
			require.NoError(t, err)
		}
	}()
	require.NoError(t, b.d.Close(ctx))
	wg.Wait()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls == 400 }, 10*time.Second, time.Millisecond)
}
