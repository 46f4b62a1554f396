package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// testUpdateEndpointKeepsStatus: an update function that leaves Status
// alone keeps the stored one, so changing settings cannot undo a status
// change a worker made after the caller read the endpoint.
func testUpdateEndpointKeepsStatus(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	read := e.endpoint(e.ep.ID) // a caller reads the endpoint (active)
	require.Equal(t, convoy.EndpointActive, read.Status)

	_, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error { // meanwhile it dies
		ep.Status = convoy.EndpointInactive
		return nil
	})
	require.NoError(t, err)

	got, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error { // the caller's settings change
		ep.Description = "rotated"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointInactive, got.Status)
	require.Equal(t, "rotated", got.Description)
	got = e.endpoint(e.ep.ID)
	require.Equal(t, convoy.EndpointInactive, got.Status)
	require.Equal(t, "rotated", got.Description)
}
