package convoy

import (
	"time"
)

// App is a customer of your service that receives webhooks: the seed's
// "application". An app owns endpoints and, unless an endpoint has its own,
// the secrets that sign what is sent to them.
//
// App values returned by a Dispatcher or a Store are copies: changing one
// changes nothing stored.
type App struct {
	// ID is a UUIDv7, set by CreateApp when empty.
	ID string
	// Name is a human name for the app, 1 to 256 bytes.
	Name string
	// SupportEmail is who to tell when an endpoint of the app dies; optional.
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
	return a.Signing.Validate()
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
