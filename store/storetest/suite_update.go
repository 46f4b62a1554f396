package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// The update cases hold UpdateApp and UpdateEndpoint to their contract: a
// read-modify-write of the stored record in one transaction.

// errStop is what the update functions of these cases fail with.
var errStop = errors.New("storetest: stop")

// testUpdateAppPatch: fn sees the app as stored and changes only what it
// sets; the result is returned and stored.
func testUpdateAppPatch(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	stored, err := s.GetApp(e.ctx, e.app.ID)
	require.NoError(t, err)

	var seen *convoy.App
	got, err := s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
		seen = a.Clone()
		a.Name = "Acme Renamed"
		a.UpdatedAt = epoch.Add(time.Hour)
		return nil
	})
	require.NoError(t, err)
	requireEqual(t, stored, seen, "fn gets the app as stored")
	want := stored.Clone()
	want.Name = "Acme Renamed"
	want.UpdatedAt = epoch.Add(time.Hour)
	requireEqual(t, want, got)
	after, err := s.GetApp(e.ctx, e.app.ID)
	require.NoError(t, err)
	requireEqual(t, want, after)

	// A second patch starts from the first one's result.
	got, err = s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
		require.Equal(t, "Acme Renamed", a.Name)
		a.SupportEmail = "ops@acme.example"
		return nil
	})
	require.NoError(t, err)
	want.SupportEmail = "ops@acme.example"
	requireEqual(t, want, got)
}

// testUpdateAppAborts: an error from fn comes back as is and a result
// that fails validation is refused; either way nothing changes, even
// though fn modified its argument.
func testUpdateAppAborts(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	before := snapshot(t, s)

	_, err := s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
		a.Name = "Half Done"
		a.Secrets = nil
		return fmt.Errorf("rotating: %w", errStop)
	})
	require.ErrorIs(t, err, errStop, "fn's error is returned as is")
	requireUnchanged(t, s, before)

	_, err = s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
		a.SupportEmail = "ops@acme.example"
		a.Name = ""
		return nil
	})
	require.ErrorIs(t, err, convoy.ErrInvalid, "an app without a name")
	requireUnchanged(t, s, before)

	called := false
	_, err = s.UpdateApp(e.ctx, convoy.NewID(), func(*convoy.App) error {
		called = true
		return nil
	})
	require.ErrorIs(t, err, convoy.ErrNotFound)
	require.False(t, called, "fn called for a missing app")
	requireUnchanged(t, s, before)
}

// testUpdateAppKeepsIdentity: ID and CreatedAt stay as stored whatever fn
// does to them.
func testUpdateAppKeepsIdentity(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	otherID := convoy.NewID()
	got, err := s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
		a.ID = otherID
		a.CreatedAt = epoch.Add(-24 * time.Hour)
		a.Name = "Acme Moved"
		return nil
	})
	require.NoError(t, err)
	want := e.app.Clone()
	want.Name = "Acme Moved"
	requireEqual(t, want, got)
	stored, err := s.GetApp(e.ctx, e.app.ID)
	require.NoError(t, err)
	requireEqual(t, want, stored)
	_, err = s.GetApp(e.ctx, otherID)
	e.requireNotFound(err)
	apps, _, err := s.ListApps(e.ctx, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, apps, 1)
}

// testUpdateAppConcurrent: concurrent read-modify-writes of one app lose
// no update.
func testUpdateAppConcurrent(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	tokens := runConcurrentUpdates(t, func(token string) (string, error) {
		a, err := s.UpdateApp(e.ctx, e.app.ID, func(a *convoy.App) error {
			a.Name += token
			return nil
		})
		if err != nil {
			return "", err
		}
		return a.Name, nil
	})
	got, err := s.GetApp(e.ctx, e.app.ID)
	require.NoError(t, err)
	requireAllTokens(t, got.Name, e.app.Name, tokens)
}

// testUpdateEndpointConcurrent: concurrent read-modify-writes of one
// endpoint lose no update.
func testUpdateEndpointConcurrent(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	tokens := runConcurrentUpdates(t, func(token string) (string, error) {
		ep, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
			ep.Description += token
			return nil
		})
		if err != nil {
			return "", err
		}
		return ep.Description, nil
	})
	got := e.endpoint(e.ep.ID)
	requireAllTokens(t, got.Description, e.ep.Description, tokens)
}

// testUpdateEndpointPatch: fn sees the endpoint as stored, Status and
// Health included, and changes only what it sets.
func testUpdateEndpointPatch(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	e.finish(d, t0, convoy.DeliveryRetry, 500)
	stored := e.endpoint(e.ep.ID)
	require.NotZero(t, stored.Health.ConsecutiveFailures)

	var seen *convoy.Endpoint
	got, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
		seen = ep.Clone()
		ep.URL = "https://hooks.acme.example/v2"
		ep.UpdatedAt = epoch.Add(time.Hour)
		return nil
	})
	require.NoError(t, err)
	requireEqual(t, stored, seen, "fn gets the endpoint as stored")
	want := stored.Clone()
	want.URL = "https://hooks.acme.example/v2"
	want.UpdatedAt = epoch.Add(time.Hour)
	requireEqual(t, want, got)
	requireEqual(t, want, e.endpoint(e.ep.ID))
}

// testUpdateEndpointAborts: an error from fn comes back as is and a
// result that fails validation is refused; either way nothing changes,
// the endpoint counts of Stats included.
func testUpdateEndpointAborts(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	before := snapshot(t, s)
	stats := e.endpointStats()

	_, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
		ep.Status = convoy.EndpointInactive
		ep.Description = "half done"
		return fmt.Errorf("rotating: %w", errStop)
	})
	require.ErrorIs(t, err, errStop, "fn's error is returned as is")
	requireUnchanged(t, s, before)
	require.Equal(t, stats, e.endpointStats())

	for _, c := range []struct {
		name string
		mod  func(*convoy.Endpoint)
		want error
	}{
		{"bad URL", func(ep *convoy.Endpoint) { ep.URL = "ftp://hooks.acme.example/" }, convoy.ErrInvalidURL},
		{"unknown status", func(ep *convoy.Endpoint) { ep.Status = "paused" }, convoy.ErrInvalidStatus},
		{"empty status", func(ep *convoy.Endpoint) { ep.Status = "" }, convoy.ErrInvalidStatus},
		{"reserved header", func(ep *convoy.Endpoint) { ep.Headers = map[string]string{"X-Convoy-Signature": "forged"} }, convoy.ErrInvalidHeader},
	} {
		_, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
			ep.Status = convoy.EndpointInactive // moves no count: refused below
			c.mod(ep)
			return nil
		})
		require.ErrorIs(t, err, c.want, c.name)
		require.ErrorIs(t, err, convoy.ErrInvalid, c.name)
		requireUnchanged(t, s, before)
		require.Equal(t, stats, e.endpointStats(), c.name)
	}

	called := false
	_, err = s.UpdateEndpoint(e.ctx, convoy.NewID(), func(*convoy.Endpoint) error {
		called = true
		return nil
	})
	require.ErrorIs(t, err, convoy.ErrNotFound)
	require.False(t, called, "fn called for a missing endpoint")
	requireUnchanged(t, s, before)
}

// testUpdateEndpointKeepsIdentity: ID, AppID, CreatedAt and Health stay as
// stored whatever fn does to them.
func testUpdateEndpointKeepsIdentity(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	other := e.newApp()
	d := e.one(t0)
	e.finish(d, t0, convoy.DeliveryRetry, 500)
	stored := e.endpoint(e.ep.ID)

	otherID := convoy.NewID()
	got, err := s.UpdateEndpoint(e.ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
		ep.ID = otherID
		ep.AppID = other.ID
		ep.CreatedAt = epoch.Add(-24 * time.Hour)
		ep.Health = convoy.EndpointHealth{LastStatusCode: 299, ConsecutiveFailures: 40}
		ep.Description = "moved?"
		return nil
	})
	require.NoError(t, err)
	want := stored.Clone()
	want.Description = "moved?"
	requireEqual(t, want, got)
	requireEqual(t, want, e.endpoint(e.ep.ID))
	_, err = s.GetEndpoint(e.ctx, otherID)
	e.requireNotFound(err)
	eps, _, err := s.ListEndpoints(e.ctx, other.ID, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, eps, "the endpoint moved to another app")
	eps, _, err = s.ListEndpoints(e.ctx, e.app.ID, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{e.ep.ID}, []string{eps[0].ID})
	require.Len(t, eps, 1)
}

// testUpdateEndpointStatusCounts: a status change made by fn moves the
// endpoint counts of Stats.
func testUpdateEndpointStatusCounts(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	ep3 := e.newEndpoint(e.app.ID)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointActive: 3}, e.endpointStats())

	setStatus := func(id string, st convoy.EndpointStatus) {
		t.Helper()
		got, err := s.UpdateEndpoint(e.ctx, id, func(ep *convoy.Endpoint) error {
			ep.Status = st
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, st, got.Status)
		require.Equal(t, st, e.endpoint(id).Status)
	}
	setStatus(ep2.ID, convoy.EndpointInactive)
	setStatus(ep3.ID, convoy.EndpointPending)
	require.Equal(t, map[convoy.EndpointStatus]int{
		convoy.EndpointActive: 1, convoy.EndpointInactive: 1, convoy.EndpointPending: 1,
	}, e.endpointStats())
	setStatus(ep3.ID, convoy.EndpointInactive)
	setStatus(e.ep.ID, convoy.EndpointActive) // no change
	require.Equal(t, map[convoy.EndpointStatus]int{
		convoy.EndpointActive: 1, convoy.EndpointInactive: 2,
	}, e.endpointStats())
	setStatus(ep2.ID, convoy.EndpointActive)
	setStatus(ep3.ID, convoy.EndpointActive)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointActive: 3}, e.endpointStats())
	e.requireCounts(t0)
}

// testUpdateEndpointKeepsStatus: an update function that leaves Status
// alone keeps the stored one, so changing settings cannot undo a status
// change a worker made after the caller read the endpoint.
func testUpdateEndpointKeepsStatus(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	read := e.endpoint(e.ep.ID) // a caller reads the endpoint (active)
	require.Equal(t, convoy.EndpointActive, read.Status)

	// Meanwhile a worker records a failure that kills it.
	d := e.one(t0)
	c := e.claimOne(t0)
	require.Equal(t, d.ID, c.ID)
	tr := transition(c, t0, convoy.DeliveryFailure, 500)
	tr.EndpointStatus = func(convoy.Endpoint) convoy.EndpointStatus { return convoy.EndpointInactive }
	e.record(tr)
	health := e.endpoint(e.ep.ID).Health

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
	requireEqual(t, health, got.Health)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointInactive: 1}, e.endpointStats())
}

// updateWorkers and updatesPerWorker shape the concurrent update cases:
// every worker appends its own tokens to one field of one record.
const (
	updateWorkers    = 8
	updatesPerWorker = 5
)

// runConcurrentUpdates has updateWorkers goroutines call update
// updatesPerWorker times each with a distinct token, and returns the
// tokens. update returns the field's value as stored after its call.
func runConcurrentUpdates(t *testing.T, update func(token string) (string, error)) []string {
	t.Helper()
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		errs   = make(chan error, updateWorkers*updatesPerWorker)
		tokens []string
	)
	for w := range updateWorkers {
		for i := range updatesPerWorker {
			tokens = append(tokens, fmt.Sprintf("%d.%d;", w, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range updatesPerWorker {
				token := fmt.Sprintf("%d.%d;", w, i)
				got, err := update(token)
				if err == nil && !strings.Contains(got, token) {
					err = fmt.Errorf("update %s returned %q, without its own change", token, got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return tokens
}

// requireAllTokens checks that v is prefix followed by every token,
// each exactly once.
func requireAllTokens(t *testing.T, v, prefix string, tokens []string) {
	t.Helper()
	rest, ok := strings.CutPrefix(v, prefix)
	require.True(t, ok, "%q lost its original value %q", v, prefix)
	for _, tok := range tokens {
		require.Equal(t, 1, strings.Count(rest, tok), "update %s lost or applied twice in %q", tok, v)
	}
	require.Len(t, rest, len(strings.Join(tokens, "")))
}
