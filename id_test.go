package convoy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// TestIDsInEitherCase: the Dispatcher takes an ID in upper case as the
// same ID, on every store (PostgreSQL's uuid columns fold case; memory and
// bolt key by the text, so the Dispatcher folds before it asks them), and
// an ID given to CreateApp or AddEndpoint is stored in lower case.
func TestIDsInEitherCase(t *testing.T) {
	up := strings.ToUpper
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			ctx := context.Background()
			rc := testutil.NewReceiver(t, nil)

			app, err := b.d.CreateApp(ctx, convoy.App{ID: up(convoy.NewID()), Name: "upper"})
			require.NoError(t, err)
			require.Equal(t, strings.ToLower(app.ID), app.ID, "stored in lower case")
			got, err := b.d.GetApp(ctx, up(app.ID))
			require.NoError(t, err)
			require.Equal(t, app.ID, got.ID)

			ep, err := b.d.AddEndpoint(ctx, up(app.ID), convoy.Endpoint{ID: up(convoy.NewID()), URL: rc.URL})
			require.NoError(t, err)
			require.Equal(t, app.ID, ep.AppID)
			require.Equal(t, strings.ToLower(ep.ID), ep.ID)
			_, err = b.d.GetEndpoint(ctx, up(ep.ID))
			require.NoError(t, err)

			res, err := b.d.Send(ctx, up(app.ID), convoy.Event{Type: "x", Data: []byte(`{}`)})
			require.NoError(t, err)
			dl := b.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
			ds, _, err := b.d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: up(ep.ID)}, convoy.Page{})
			require.NoError(t, err)
			require.Len(t, ds, 1)
			_, err = b.d.GetDelivery(ctx, up(dl.ID))
			require.NoError(t, err)
			_, _, err = b.d.GetEvent(ctx, up(dl.EventID))
			require.NoError(t, err)
			as, _, err := b.d.ListAttempts(ctx, up(dl.ID), convoy.Page{})
			require.NoError(t, err)
			require.Len(t, as, 1)
			require.Equal(t, 1, rc.Count())
		})
	}
}
