package postgres_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// endpointIDs lists the IDs of eps in order.
func endpointIDs(eps []*convoy.Endpoint) []string {
	ids := make([]string, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	return ids
}

// TestListEndpointsReadTogether: first pages of several apps read in one
// group read give each call its app's endpoints in ID order, cut to its
// own page size, and copies of its own even when two calls ask for the
// same app (one of them spelling its ID in upper case, as ValidateID
// allows).
func TestListEndpointsReadTogether(t *testing.T) {
	s := newStore(t, nil)
	a, b := setup(t, s, 3), setup(t, s, 1)
	empty := setup(t, s, 0)
	want := func(f *fixture, n int) []string {
		ids := endpointIDs(f.eps)
		slices.Sort(ids)
		return ids[:min(n, len(ids))]
	}
	got := postgres.ListTogether(t.Context(), s,
		[]string{a.app.ID, b.app.ID, a.app.ID, empty.app.ID, strings.ToUpper(a.app.ID)}, []int{2, 10, 10, 10, 10})
	for _, g := range got {
		require.NoError(t, g.Err)
	}
	require.Equal(t, want(a, 2), endpointIDs(got[0].Eps))
	require.Equal(t, want(b, 10), endpointIDs(got[1].Eps))
	require.Equal(t, want(a, 10), endpointIDs(got[2].Eps))
	require.Empty(t, got[3].Eps)
	require.Equal(t, want(a, 10), endpointIDs(got[4].Eps), "the app's ID in upper case")
	for i := range got[0].Eps {
		require.NotSame(t, got[0].Eps[i], got[2].Eps[i], "two calls share an endpoint")
		require.Equal(t, got[0].Eps[i], got[2].Eps[i])
	}
}

// TestListEndpointsConcurrent: many first-page calls at once (Sends of
// several apps) each get what a call of their own would, a page with its
// cursor, ErrNotFound for an unknown app, and no endpoint shared with
// another call.
func TestListEndpointsConcurrent(t *testing.T) {
	s := newStore(t, nil)
	fs := []*fixture{setup(t, s, 3), setup(t, s, 1), setup(t, s, 0)}
	unknown := storetest.NewApp().ID
	type result struct {
		eps  []*convoy.Endpoint
		next string
		err  error
	}
	const calls = 64
	results := make([]result, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app, limit := unknown, 2
			if i%4 < len(fs) {
				app = fs[i%4].app.ID
			}
			eps, next, err := s.ListEndpoints(t.Context(), app, convoy.Page{Limit: limit})
			results[i] = result{eps, next, err}
		}()
	}
	wg.Wait()
	seen := map[*convoy.Endpoint]bool{}
	for i, r := range results {
		if i%4 == 3 {
			assert.ErrorIs(t, r.err, convoy.ErrNotFound, "call %d", i)
			continue
		}
		require.NoError(t, r.err, "call %d", i)
		f := fs[i%4]
		ids := endpointIDs(f.eps)
		slices.Sort(ids)
		wantIDs, wantNext := ids, ""
		if len(ids) > 2 {
			wantIDs, wantNext = ids[:2], ids[1]
		}
		assert.Equal(t, wantIDs, endpointIDs(r.eps), "call %d", i)
		assert.Equal(t, wantNext, r.next, "call %d", i)
		for _, e := range r.eps {
			assert.False(t, seen[e], "call %d shares an endpoint with another", i)
			seen[e] = true
		}
	}
}
