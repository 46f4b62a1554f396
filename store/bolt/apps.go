package bolt

import (
	"bytes"
	"context"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// CreateApp stores a new app. It returns an error wrapping ErrInvalid if
// the app does not validate and ErrDuplicate if the ID exists.
func (s *Store) CreateApp(ctx context.Context, app *convoy.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	enc, err := encodeApp(app)
	if err != nil {
		return err
	}
	id := app.ID
	return s.write(ctx, func(w *wtx) error {
		if has(w.Tx, bucketApps, id) {
			return duplicate("app", id)
		}
		return w.put(bucketApps, []byte(id), enc)
	})
}

// GetApp returns the app with the ID, or an error wrapping ErrNotFound.
func (s *Store) GetApp(ctx context.Context, id string) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	var app *convoy.App
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		app, err = getApp(tx, id)
		return err
	})
	return app, err
}

// UpdateApp changes a stored app in one transaction: fn gets a copy of
// the app as stored, and what it leaves is validated (App.Validate) and
// stored with the stored ID and CreatedAt. It returns the app as stored.
// An error from fn is returned as is, with nothing changed; ErrNotFound if
// the app is missing.
//
// fn runs on the committer goroutine inside the batch transaction, so
// other writes wait while it runs: it must be quick. It runs again if the
// batch is retried after another operation failed, so it must only modify
// its argument.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*convoy.App) error) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	var out *convoy.App
	err := s.write(ctx, func(w *wtx) error {
		out = nil
		v := w.Bucket(bucketApps).Get([]byte(id))
		if v == nil {
			return notFound("app", id)
		}
		old, err := decodeApp(v)
		if err != nil {
			return err
		}
		app, err := decodeApp(v) // fn's copy
		if err != nil {
			return err
		}
		if err := fn(app); err != nil {
			return err
		}
		app.ID, app.CreatedAt = old.ID, old.CreatedAt
		if err := app.Validate(); err != nil {
			return err
		}
		enc, err := encodeApp(app)
		if err != nil {
			return err
		}
		out = app.Clone()
		if bytes.Equal(enc, v) {
			return nil // unchanged: nothing to write
		}
		return w.put(bucketApps, []byte(id), enc)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteApp removes an app with its endpoints, events, deliveries,
// attempts and idempotency keys, in one transaction. ErrNotFound if
// missing.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if !has(w.Tx, bucketApps, id) {
			return notFound("app", id)
		}
		if err := w.flushEndpoints(); err != nil {
			return err
		}
		prefix := []byte(id)
		if err := eachKeyDeleting(w, bucketAppEventCreated, prefix, func(k []byte) error {
			if ev, err := getEventMeta(w.Tx, string(k[len(k)-idLen:])); err == nil {
				if err := deleteEvent(w, ev); err != nil {
					return err
				}
			}
			return w.del(bucketAppEventCreated, k) // even if stale
		}); err != nil {
			return err
		}
		if err := eachKeyDeleting(w, bucketAppEndpoints, prefix, func(k []byte) error {
			if ep, err := getEndpoint(w.Tx, string(k[idLen:])); err == nil {
				if err := deleteEndpoint(w, ep); err != nil {
					return err
				}
			}
			return w.del(bucketAppEndpoints, k) // even if stale
		}); err != nil {
			return err
		}
		// Idempotency keys whose event is gone already went with their
		// events; sweep any left so a re-created app starts clean.
		if err := deletePrefix(w, bucketIdempotency, prefix); err != nil {
			return err
		}
		return w.del(bucketApps, prefix)
	})
}

// ListApps lists apps in ID order, a page at a time.
func (s *Store) ListApps(ctx context.Context, page convoy.Page) ([]*convoy.App, string, error) {
	if err := idCursor(page); err != nil {
		return nil, "", err
	}
	var (
		apps []*convoy.App
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		apps, next = nil, ""
		return walkPage(tx.Bucket(bucketApps), nil, page, func(k, v []byte) (string, error) {
			app, err := decodeApp(v)
			if err != nil {
				return "", err
			}
			apps = append(apps, app)
			return app.ID, nil
		}, &next)
	})
	if err != nil {
		return nil, "", err
	}
	return apps, next, nil
}

// CreateEndpoint stores a new endpoint; its Health starts empty whatever
// ep holds. It returns an error wrapping ErrInvalid if the endpoint does not
// validate, ErrNotFound if its app is missing and ErrDuplicate if the ID
// exists.
func (s *Store) CreateEndpoint(ctx context.Context, ep *convoy.Endpoint) error {
	if err := ep.Validate(); err != nil {
		return err
	}
	ep = ep.Clone()
	ep.Health = convoy.EndpointHealth{}
	enc, err := encodeEndpoint(ep)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if !has(w.Tx, bucketApps, ep.AppID) {
			return notFound("app", ep.AppID)
		}
		if has(w.Tx, bucketEndpoints, ep.ID) {
			return duplicate("endpoint", ep.ID)
		}
		if err := w.put(bucketEndpoints, []byte(ep.ID), enc); err != nil {
			return err
		}
		if ep.Ordered {
			if err := w.put(bucketOrdered, []byte(ep.ID), noGate); err != nil {
				return err
			}
		}
		w.count(countEndpoint+string(ep.Status), 1)
		return w.put(bucketAppEndpoints, join([]byte(ep.AppID), []byte(ep.ID)), nil)
	})
}

// GetEndpoint returns the endpoint with the ID, or an error wrapping
// ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	var ep *convoy.Endpoint
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		ep, err = getEndpoint(tx, id)
		return err
	})
	return ep, err
}

// UpdateEndpoint changes a stored endpoint in one transaction, as
// UpdateApp does: fn gets a copy of the endpoint as stored, Status and
// Health included, and what it leaves is validated and stored with the
// stored ID, AppID, CreatedAt and Health. A status change made by fn moves
// the endpoint between the status counts of Stats in the same
// transaction. An error from fn is returned as is, with nothing changed;
// ErrNotFound if the endpoint is missing. fn runs on the committer
// goroutine and may run more than once, as for UpdateApp.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, fn func(*convoy.Endpoint) error) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	var out *convoy.Endpoint
	err := s.write(ctx, func(w *wtx) error {
		out = nil
		if err := w.flushEndpoints(); err != nil {
			return err
		}
		v := w.Bucket(bucketEndpoints).Get([]byte(id))
		if v == nil {
			return notFound("endpoint", id)
		}
		old, err := decodeEndpoint(v)
		if err != nil {
			return err
		}
		ep, err := decodeEndpoint(v) // fn's copy
		if err != nil {
			return err
		}
		if err := fn(ep); err != nil {
			return err
		}
		ep.ID, ep.AppID, ep.CreatedAt, ep.Health = old.ID, old.AppID, old.CreatedAt, old.Health
		if err := ep.Validate(); err != nil {
			return err
		}
		enc, err := encodeEndpoint(ep)
		if err != nil {
			return err
		}
		out = ep.Clone()
		if bytes.Equal(enc, v) {
			return nil // unchanged: nothing to write
		}
		if old.Status != ep.Status {
			w.count(countEndpoint+string(old.Status), -1)
			w.count(countEndpoint+string(ep.Status), 1)
		}
		if old.Ordered != ep.Ordered {
			if err := setOrdered(w, id, ep.Ordered); err != nil {
				return err
			}
		}
		return w.put(bucketEndpoints, []byte(id), enc)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint with its deliveries and their
// attempts, in one transaction. ErrNotFound if missing.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.flushEndpoints(); err != nil {
			return err
		}
		ep, err := getEndpoint(w.Tx, id)
		if err != nil {
			return err
		}
		return deleteEndpoint(w, ep)
	})
}

// ListEndpoints lists an app's endpoints in ID order, a page at a time.
// ErrNotFound if the app is missing.
func (s *Store) ListEndpoints(ctx context.Context, appID string, page convoy.Page) ([]*convoy.Endpoint, string, error) {
	if err := convoy.ValidateID("app ID", appID); err != nil {
		return nil, "", err
	}
	if err := idCursor(page); err != nil {
		return nil, "", err
	}
	var (
		eps  []*convoy.Endpoint
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		eps, next = nil, ""
		if !has(tx, bucketApps, appID) {
			return notFound("app", appID)
		}
		return walkPage(tx.Bucket(bucketAppEndpoints), []byte(appID), page, func(k, _ []byte) (string, error) {
			ep, err := getEndpoint(tx, string(k[idLen:]))
			if err != nil {
				return "", err
			}
			eps = append(eps, ep)
			return ep.ID, nil
		}, &next)
	})
	if err != nil {
		return nil, "", err
	}
	return eps, next, nil
}

// idCursor checks the cursor of a list ordered by ID: an ID, or empty.
func idCursor(page convoy.Page) error {
	if page.Cursor == "" {
		return nil
	}
	return convoy.ValidateID("Page.Cursor", page.Cursor)
}
