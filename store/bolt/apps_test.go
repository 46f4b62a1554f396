package bolt

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
)

// TestUpdateEndpointRetriedInBatch puts an UpdateEndpoint that changes the
// endpoint's status in a batch with an operation that fails after
// writing: the batch runs again without that one, so the update's function
// runs twice, and the status counts still move once.
func TestUpdateEndpointRetriedInBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	t.Cleanup(func() { require.NoError(t, CheckIndexes(s)) })
	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	require.NoError(t, s.CreateEndpoint(ctx, ep))

	release := holdCommitter(t, s)
	var (
		wg      sync.WaitGroup
		calls   int // only the committer's goroutine runs fn
		updated *convoy.Endpoint
		errs    [2]error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		updated, errs[0] = s.UpdateEndpoint(ctx, ep.ID, func(e *convoy.Endpoint) error {
			calls++
			e.Status = convoy.EndpointInactive
			return nil
		})
	}()
	waitQueued(s, 1)
	errBoom := errors.New("boom")
	go func() {
		defer wg.Done()
		errs[1] = s.write(ctx, func(w *wtx) error {
			if err := w.put(bucketMeta, []byte("half-done"), []byte("x")); err != nil {
				return err
			}
			return errBoom
		})
	}()
	waitQueued(s, 2)
	release()
	wg.Wait()

	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], errBoom)
	require.Equal(t, 2, calls, "the batch ran again without the failed operation")
	require.Equal(t, convoy.EndpointInactive, updated.Status)
	st, err := s.Stats(ctx, updated.UpdatedAt)
	require.NoError(t, err)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointInactive: 1}, st.Endpoints)
}
