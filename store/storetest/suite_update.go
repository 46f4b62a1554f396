package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// testUpdateEndpointKeepsStatusWhenEmpty: an update without a status keeps
// the stored one, so changing settings cannot undo a status change a worker
// made after the caller read the endpoint.
func testUpdateEndpointKeepsStatusWhenEmpty(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	read := e.endpoint(e.ep.ID) // a caller reads the endpoint (active)

	dead := read.Clone() // meanwhile it dies
	dead.Status = convoy.EndpointInactive
	require.NoError(t, s.UpdateEndpoint(e.ctx, dead))

	upd := read.Clone() // the caller writes its settings change
	upd.Description = "rotated"
	upd.Status = ""
	require.NoError(t, s.UpdateEndpoint(e.ctx, upd))
	got := e.endpoint(e.ep.ID)
	require.Equal(t, convoy.EndpointInactive, got.Status)
	require.Equal(t, "rotated", got.Description)

	bad := read.Clone()
	bad.Status = "dead"
	require.ErrorIs(t, s.UpdateEndpoint(e.ctx, bad), convoy.ErrInvalidStatus)
}
