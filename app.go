package convoy

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode"
)

// App is a customer of your service that receives webhooks: the seed's
// "application". An app owns endpoints and, unless an endpoint has its own,
// the secrets that sign what is sent to them.
//
// App values returned by a Dispatcher or a Store are copies: changing one
// changes nothing stored.
type App struct {
	// ID is a UUIDv7, set by CreateApp when empty. An ID given here may be
	// any UUID in canonical form, stored in lower case (see ValidateID);
	// lists order apps by ID, so only time-ordered IDs list in creation
	// order.
	ID string
	// Name is a human name for the app, 1 to 256 bytes; CreateApp and
	// UpdateApp refuse one that is all spaces or holds control characters.
	Name string
	// SupportEmail is who to tell when an endpoint of the app dies;
	// optional. CreateApp and UpdateApp refuse anything but one bare
	// address (ops@example.com, no display name), so that it can go into a
	// mail header as it is.
	SupportEmail string
	// Secrets sign requests to the app's endpoints, newest last. CreateApp
	// generates one with crypto/rand when none is given. Expired secrets are
	// dropped when the app is next written.
	Secrets []Secret
	// Signing chooses the signature scheme; the zero value is the default
	// (Convoy advanced, SHA256, hex).
	Signing Signing
	// CreatedAt and UpdatedAt are set by the Dispatcher.
	CreatedAt time.Time
	UpdatedAt time.Time
}

const (
	maxNameLen  = 256
	maxEmailLen = 254
	maxDescLen  = 1024
	maxSecrets  = 10
)

// Validate reports whether a is well formed, returning an error that wraps
// ErrInvalid (and a more specific sentinel) otherwise.
func (a *App) Validate() error {
	if a == nil {
		return invalid(ErrInvalid, "app", "nil")
	}
	if err := ValidateID("app.ID", a.ID); err != nil {
		return err
	}
	if a.Name == "" {
		return invalid(ErrInvalid, "app.Name", "empty")
	}
	if len(a.Name) > maxNameLen {
		return invalid(ErrTooLong, "app.Name", "")
	}
	if len(a.SupportEmail) > maxEmailLen {
		return invalid(ErrTooLong, "app.SupportEmail", "")
	}
	if len(a.Secrets) > maxSecrets {
		return invalid(ErrInvalidSecret, "app.Secrets", "too many")
	}
	if err := validateSecrets("app.Secrets", a.Secrets); err != nil {
		return err
	}
	if err := checkSchemeSecrets("app.Secrets", a.Signing.Scheme, a.Secrets); err != nil {
		return err
	}
	return a.Signing.Validate()
}

// checkNameEmail refuses an app name or support address, where given, that
// would be stored only to mislead later: a blank name or one with control
// characters, an address that is not one bare address. CreateApp checks
// both and UpdateApp those it sets, but App.Validate does not: an app
// stored before these checks still updates, and its secrets still
// rotate, without first correcting them.
func checkNameEmail(name, email *string) error {
	if name != nil {
		if strings.TrimSpace(*name) == "" {
			return invalid(ErrInvalid, "app.Name", "empty")
		}
		if strings.ContainsFunc(*name, unicode.IsControl) {
			return invalid(ErrInvalid, "app.Name", "control characters")
		}
	}
	if email != nil && *email != "" && len(*email) <= maxEmailLen && !bareAddress(*email) {
		return invalid(ErrInvalid, "app.SupportEmail", "not one bare email address")
	}
	return nil
}

// bareAddress reports whether s is exactly one email address with no
// display name, comment or surrounding space: what a mail header may
// carry unchanged (no CR or LF can pass).
func bareAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// Clone returns a deep copy of a.
func (a *App) Clone() *App {
	if a == nil {
		return nil
	}
	c := *a
	c.Secrets = cloneSecrets(a.Secrets)
	return &c
}

// CreateApp registers an app and returns it as stored. ID, CreatedAt and
// UpdatedAt are set here. When app.Secrets is empty a secret is generated
// with crypto/rand. Errors wrap ErrInvalid for bad input and ErrDuplicate
// for an existing ID.
func (d *Dispatcher) CreateApp(ctx context.Context, app App) (*App, error) {
	a := app.Clone()
	if a.ID == "" {
		a.ID = NewID()
	}
	a.ID = strings.ToLower(a.ID) // see ValidateID
	if err := checkNameEmail(&a.Name, &a.SupportEmail); err != nil {
		return nil, err
	}
	now := d.clock.Now()
	a.CreatedAt, a.UpdatedAt = now, now
	if len(a.Secrets) == 0 {
		v, err := GenerateSecret()
		if err != nil {
			return nil, err
		}
		a.Secrets = []Secret{{Value: v, CreatedAt: now}}
	}
	stampSecrets(a.Secrets, now)
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if err := d.store.CreateApp(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// GetApp returns the app with the ID. ErrNotFound if there is none.
func (d *Dispatcher) GetApp(ctx context.Context, id string) (*App, error) {
	if err := checkID("appID", &id); err != nil {
		return nil, err
	}
	return d.store.GetApp(ctx, id)
}

// AppUpdate names the app settings UpdateApp changes. A nil field keeps
// the stored value, so an update cannot wipe what it does not mention:
//
//	d.UpdateApp(ctx, id, convoy.AppUpdate{SupportEmail: convoy.Ptr("ops@acme.example")})
type AppUpdate struct {
	// Name, when set, renames the app.
	Name *string
	// SupportEmail, when set, replaces the support contact; "" removes it.
	SupportEmail *string
	// Signing, when set, replaces the signature scheme; &Signing{} is the
	// default (Convoy advanced, SHA256, hex).
	Signing *Signing
	// Secrets, when set, replace the app's secrets at once (setting the
	// secret is an upsert); it may not be empty. To rotate while the old
	// secret keeps signing for a while, use RotateAppSecret.
	Secrets *[]Secret
}

// apply sets the fields u names on a, as of now.
func (u AppUpdate) apply(a *App, now time.Time) error {
	if u.Name != nil {
		a.Name = *u.Name
	}
	if u.SupportEmail != nil {
		a.SupportEmail = *u.SupportEmail
	}
	if u.Signing != nil {
		a.Signing = *u.Signing
	}
	if u.Secrets != nil {
		if len(*u.Secrets) == 0 {
			return invalid(ErrInvalidSecret, "AppUpdate.Secrets", "an app needs a secret")
		}
		a.Secrets = cloneSecrets(*u.Secrets)
		stampSecrets(a.Secrets, now)
	}
	a.Secrets = dropExpired(a.Secrets, now)
	a.UpdatedAt = now
	return a.Validate()
}

// UpdateApp changes the settings u names on the app with the ID, in one
// store transaction, and returns the app as stored. Fields u leaves nil
// keep their stored values. Errors wrap ErrInvalid for bad input (nothing
// is changed then), ErrInvalidSecret among them when an endpoint that
// signs with the app's secrets or scheme could not sign with the new ones
// (Standard Webhooks needs whsec_ secrets), and ErrNotFound for an unknown
// app.
func (d *Dispatcher) UpdateApp(ctx context.Context, id string, u AppUpdate) (*App, error) {
	if err := checkID("appID", &id); err != nil {
		return nil, err
	}
	if err := checkNameEmail(u.Name, u.SupportEmail); err != nil {
		return nil, err
	}
	var eps []*Endpoint
	if u.Secrets != nil || u.Signing != nil {
		var err error
		if eps, err = d.allEndpoints(ctx, id); err != nil {
			return nil, err
		}
	}
	now := d.clock.Now()
	a, err := d.store.UpdateApp(ctx, id, func(a *App) error {
		if err := u.apply(a, now); err != nil {
			return err
		}
		return checkEndpointsCanSign(a, eps, now, u.Secrets != nil, u.Signing != nil)
	})
	if err != nil {
		return nil, err
	}
	d.cache.forgetApp(id)
	return a, nil
}

// allEndpoints returns every endpoint of the app (Send's fan-out among
// its callers: an app of one page costs one store call and no copy).
func (d *Dispatcher) allEndpoints(ctx context.Context, appID string) ([]*Endpoint, error) {
	var all []*Endpoint
	for page := (Page{Limit: MaxPageSize}); ; {
		eps, next, err := d.store.ListEndpoints(ctx, appID, page)
		if err != nil {
			return nil, err
		}
		if next == "" && all == nil {
			return eps, nil
		}
		all = append(all, eps...)
		if next == "" {
			return all, nil
		}
		page.Cursor = next
	}
}

// checkEndpointsCanSign refuses an app, about to be stored with new
// secrets (newSecrets) or a new scheme (newScheme), that one of the
// endpoints the change reaches could not sign with: an endpoint with no
// live secret of its own signs with the app's secrets, and one without a
// scheme of its own with the app's scheme, as signingFor chooses at each
// attempt (AddEndpoint and UpdateEndpoint check the same from the
// endpoint's side). Refused, the change stores nothing; let through, every
// attempt of that endpoint would fail before it is sent, until the
// endpoint is marked dead. Endpoints the change does not reach are not
// looked at, so one misconfigured before cannot block a rotation.
//
// eps is read before the app's store transaction: an endpoint added
// meanwhile is checked by AddEndpoint against the app as it was.
func checkEndpointsCanSign(a *App, eps []*Endpoint, now time.Time, newSecrets, newScheme bool) error {
	for _, ep := range eps {
		ownSecrets, ownScheme := len(liveSecrets(ep.Secrets, now)) > 0, ep.Signing.Scheme != ""
		if !(newSecrets && !ownSecrets || newScheme && !ownScheme) {
			continue
		}
		scheme, secrets, field := ep.Signing.Scheme, ep.Secrets, "endpoint "+ep.ID+" Secrets"
		if !ownScheme {
			scheme = a.Signing.Scheme
		}
		if !ownSecrets {
			secrets, field = a.Secrets, "app.Secrets (endpoint "+ep.ID+" signs with them)"
		}
		if err := checkSchemeSecrets(field, scheme, secrets); err != nil {
			return err
		}
	}
	return nil
}

// Ptr returns a pointer to v: a shorthand for the optional fields of
// AppUpdate and EndpointUpdate.
func Ptr[T any](v T) *T { return &v }

// RotateAppSecret adds a new signing secret to an app (generated with
// crypto/rand when secret is empty) and keeps the current ones signing for
// keepOld more, so receivers can switch without losing a request; with
// keepOld zero the old secrets stop at once (a negative keepOld is refused).
// It returns the app as stored.
//
// Convoy advanced and Standard Webhooks carry one signature per live
// secret, so receivers holding either secret verify during the overlap.
// Convoy simple has room for one signature only: it keeps signing with the
// oldest live secret until that secret expires, keepOld from now, and
// then with the new one. Its receivers keep the old secret until then and
// switch at expiry, or accept both during the overlap (a Verifier with
// both in Secrets does).
func (d *Dispatcher) RotateAppSecret(ctx context.Context, appID string, secret SecretValue, keepOld time.Duration) (*App, error) {
	if err := checkID("appID", &appID); err != nil {
		return nil, err
	}
	if keepOld < 0 {
		return nil, invalid(ErrInvalid, "keepOld", "negative")
	}
	if secret == "" {
		g, err := GenerateSecret()
		if err != nil {
			return nil, err
		}
		secret = g
	}
	eps, err := d.allEndpoints(ctx, appID)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	a, err := d.store.UpdateApp(ctx, appID, func(a *App) error {
		a.Secrets = rotate(a.Secrets, secret, keepOld, now)
		a.UpdatedAt = now
		if err := a.Validate(); err != nil {
			return err
		}
		return checkEndpointsCanSign(a, eps, now, true, false)
	})
	if err != nil {
		return nil, err
	}
	d.cache.forgetApp(appID)
	return a, nil
}

// DeleteApp removes an app with its endpoints, events, deliveries and
// attempts. ErrNotFound if there is none.
func (d *Dispatcher) DeleteApp(ctx context.Context, id string) error {
	if err := checkID("appID", &id); err != nil {
		return err
	}
	defer d.cache.forgetApp(id)
	return d.store.DeleteApp(ctx, id)
}

// ListApps returns one page of apps in ID order, which is creation order
// for the IDs CreateApp makes (UUIDv7s), and the cursor of the next page
// ("" at the end). An ID given in App.ID sorts where its text does.
func (d *Dispatcher) ListApps(ctx context.Context, page Page) ([]*App, string, error) {
	return d.store.ListApps(ctx, page)
}

// rotate returns secrets with the live ones set to expire keepOld after now
// and v appended.
func rotate(secrets []Secret, v SecretValue, keepOld time.Duration, now time.Time) []Secret {
	out := make([]Secret, 0, len(secrets)+1)
	until := now.Add(keepOld)
	for _, s := range dropExpired(secrets, now) {
		if keepOld <= 0 {
			continue
		}
		if s.ExpiresAt.IsZero() || s.ExpiresAt.After(until) {
			s.ExpiresAt = until
		}
		out = append(out, s)
	}
	return append(out, Secret{Value: v, CreatedAt: now})
}

func dropExpired(secrets []Secret, now time.Time) []Secret {
	out := secrets[:0:0]
	for _, s := range secrets {
		if s.LiveAt(now) {
			out = append(out, s)
		}
	}
	return out
}

func stampSecrets(secrets []Secret, now time.Time) {
	for i := range secrets {
		if secrets[i].CreatedAt.IsZero() {
			secrets[i].CreatedAt = now
		}
	}
}
