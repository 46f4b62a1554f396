package convoy

import (
	"errors"
	"fmt"

	"github.com/convoykit/convoy/internal/ssrf"
)

// Sentinel errors. Every error returned by this package and by the stores
// that implement [Store] wraps one of these, so callers match them with
// [errors.Is] and never compare message text.
var (
	// ErrNotFound reports that an app, endpoint, event, delivery or attempt
	// does not exist.
	ErrNotFound = errors.New("convoy: not found")
	// ErrDuplicate reports that a record with the same ID already exists.
	ErrDuplicate = errors.New("convoy: already exists")
	// ErrInvalid is wrapped by every validation error; the more specific
	// sentinels below wrap it too, so errors.Is(err, ErrInvalid) matches
	// any bad input.
	ErrInvalid = errors.New("convoy: invalid input")
	// ErrInvalidID reports an empty or malformed ID.
	ErrInvalidID = fmt.Errorf("%w: malformed ID", ErrInvalid)
	// ErrInvalidURL reports an endpoint URL that is not an absolute http(s)
	// URL with a valid host (an IP literal, or a name IDNA maps to one),
	// carries credentials, is too long, or names a blocked literal address
	// or local name in any spelling.
	ErrInvalidURL = fmt.Errorf("%w: bad endpoint URL", ErrInvalid)
	// ErrInvalidStatus reports an endpoint or delivery status outside the
	// defined set, or a transition the status does not allow.
	ErrInvalidStatus = fmt.Errorf("%w: bad status", ErrInvalid)
	// ErrInvalidEventType reports an event type that is empty, too long or
	// uses characters outside [a-zA-Z0-9_.-].
	ErrInvalidEventType = fmt.Errorf("%w: bad event type", ErrInvalid)
	// ErrInvalidJSON reports event data that is not one valid JSON value.
	ErrInvalidJSON = fmt.Errorf("%w: event data is not valid JSON", ErrInvalid)
	// ErrPayloadTooLarge reports event data over Config.MaxPayloadBytes.
	ErrPayloadTooLarge = fmt.Errorf("%w: payload too large", ErrInvalid)
	// ErrInvalidHeader reports a custom endpoint header that is malformed,
	// too long, or would override a header the dispatcher or HTTP sets
	// itself, and a signature header that could not carry the signature.
	// Most such errors are a *HeaderError.
	ErrInvalidHeader = fmt.Errorf("%w: bad header", ErrInvalid)
	// ErrTooLong reports a name, description, email or idempotency key over
	// its length limit.
	ErrTooLong = fmt.Errorf("%w: value too long", ErrInvalid)
	// ErrInvalidSecret reports a signing secret that is too short, too long
	// or not in the form its signature scheme needs.
	ErrInvalidSecret = fmt.Errorf("%w: bad secret", ErrInvalid)
	// ErrUnknownHash reports a hash function name outside the twelve that
	// the signers support.
	ErrUnknownHash = fmt.Errorf("%w: unknown hash function", ErrInvalid)
	// ErrUnknownScheme reports a signature scheme name this package does not
	// know.
	ErrUnknownScheme = fmt.Errorf("%w: unknown signature scheme", ErrInvalid)
	// ErrInvalidRetry reports a retry policy whose parameters cannot work.
	ErrInvalidRetry = fmt.Errorf("%w: bad retry policy", ErrInvalid)
	// ErrInvalidRateLimit reports a rate limit whose parameters cannot
	// work.
	ErrInvalidRateLimit = fmt.Errorf("%w: bad rate limit", ErrInvalid)
	// ErrInvalidConfig reports a Config that New refuses.
	ErrInvalidConfig = fmt.Errorf("%w: bad config", ErrInvalid)

	// ErrBlockedAddress reports an outbound connection, or an endpoint URL
	// naming a literal address, in a range the SSRF guard refuses
	// (loopback, private, link-local, ...). Config.AllowNetworks opts in.
	ErrBlockedAddress = ssrf.ErrBlocked

	// ErrLeaseLost reports that a caller tried to record or release a
	// delivery whose lease it no longer holds: the lease expired and another
	// worker claimed it. Nothing was changed.
	ErrLeaseLost = errors.New("convoy: lease lost")

	// ErrClosed reports a call on a Dispatcher or Store that has been closed.
	ErrClosed = errors.New("convoy: closed")
	// ErrStarted reports a second call to Dispatcher.Start.
	ErrStarted = errors.New("convoy: dispatcher already started")

	// ErrSignatureMismatch reports a webhook signature that matches none of
	// the secrets tried.
	ErrSignatureMismatch = errors.New("convoy: signature mismatch")
	// ErrMissingSignature reports a request without the signature header (or,
	// for Standard Webhooks, without one of its three headers).
	ErrMissingSignature = errors.New("convoy: missing signature")
	// ErrMalformedSignature reports a signature header that cannot be parsed.
	ErrMalformedSignature = errors.New("convoy: malformed signature header")
	// ErrTimestampExpired reports a signed timestamp outside the verifier's
	// tolerance, too old or too far in the future.
	ErrTimestampExpired = errors.New("convoy: signature timestamp outside tolerance")
)

// validationError carries the field that failed validation, so messages say
// what was wrong, while errors.Is still matches the sentinel.
type validationError struct {
	field string
	msg   string
	err   error
}

func (e *validationError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%v (%s)", e.err, e.field)
	}
	return fmt.Sprintf("%v (%s: %s)", e.err, e.field, e.msg)
}

func (e *validationError) Unwrap() error { return e.err }

// invalid returns an error wrapping sentinel that names the bad field.
func invalid(sentinel error, field, msg string) error {
	return &validationError{field: field, msg: msg, err: sentinel}
}

// HeaderError reports a header name refused by validation: a custom
// endpoint header (Endpoint.Headers) or a signature header
// (Signing.Header). It wraps ErrInvalidHeader, and so ErrInvalid. It never
// carries a header's value, which may be a credential.
type HeaderError struct {
	// Field is where the header was given: "endpoint.Headers" or
	// "signing.Header".
	Field string
	// Name is the header name as given.
	Name string
	// Reason says why it was refused, e.g. "set by convoy or HTTP itself".
	Reason string
}

// Error returns "convoy: invalid input: bad header (<Field>: "<Name>":
// <Reason>)".
func (e *HeaderError) Error() string {
	return fmt.Sprintf("%v (%s: %q: %s)", ErrInvalidHeader, e.Field, e.Name, e.Reason)
}

// Unwrap returns ErrInvalidHeader.
func (e *HeaderError) Unwrap() error { return ErrInvalidHeader }
