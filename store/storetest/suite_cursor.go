package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// testMalformedCursor: a cursor that no list returned is refused with
// ErrInvalid by every list, rather than read as the end of the list.
func testMalformedCursor(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	dl := e.one(t0)
	for _, bad := range []string{"garbage", "zzzz", "../x"} {
		p := convoy.Page{Cursor: bad}
		_, _, err := s.ListApps(e.ctx, p)
		require.ErrorIs(t, err, convoy.ErrInvalid, "ListApps %q", bad)
		_, _, err = s.ListEndpoints(e.ctx, e.app.ID, p)
		require.ErrorIs(t, err, convoy.ErrInvalid, "ListEndpoints %q", bad)
		_, _, err = s.ListEvents(e.ctx, convoy.EventQuery{}, p)
		require.ErrorIs(t, err, convoy.ErrInvalid, "ListEvents %q", bad)
		_, _, err = s.ListDeliveries(e.ctx, convoy.DeliveryQuery{EndpointID: e.ep.ID}, p)
		require.ErrorIs(t, err, convoy.ErrInvalid, "ListDeliveries %q", bad)
		_, _, err = s.ListAttempts(e.ctx, dl.ID, p)
		require.ErrorIs(t, err, convoy.ErrInvalid, "ListAttempts %q", bad)
	}
}
