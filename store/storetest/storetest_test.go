package storetest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
)

// The suite relies on its fixtures being valid input for every store.
func TestFixturesAreValid(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	app := storetest.NewApp()
	require.NoError(t, app.Validate())
	ep := storetest.NewEndpoint(app.ID)
	require.NoError(t, ep.Validate())
	ev := storetest.NewEvent(app.ID, at)
	require.NoError(t, ev.Validate(0))
	d := storetest.NewDelivery(ev, ep.ID)
	require.NoError(t, d.Validate())
	require.Equal(t, convoy.DeliveryScheduled, d.Status)
	require.True(t, d.NextAttemptAt.Equal(at))
	for _, code := range []int{0, 200, 503} {
		a := storetest.NewAttempt(d, 1, code, at)
		require.NoError(t, a.Validate())
		require.Equal(t, code/100 == 2, a.Success(), "status %d", code)
	}
	require.NotEqual(t, storetest.NewApp().ID, app.ID, "fresh IDs")
}
