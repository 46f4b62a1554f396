package bolt

import (
	"github.com/convoykit/convoy"
)

// The record codecs used by the store (binary.go). Every read and write of
// a record goes through these functions, so the format can change (with a
// schema version bump) in one place. Decoding never retains its input: the
// returned values own their memory, which matters because bbolt's slices
// die with their transaction.

func encodeApp(a *convoy.App) ([]byte, error)           { return binApp(a), nil }
func encodeEndpoint(e *convoy.Endpoint) ([]byte, error) { return binEndpoint(e), nil }
func encodeEvent(ev *convoy.Event) ([]byte, error)      { return binEvent(ev), nil }
func encodeDelivery(d *convoy.Delivery) ([]byte, error) { return binDelivery(d), nil }
func encodeAttempt(a *convoy.Attempt) ([]byte, error)   { return binAttempt(a), nil }

func decodeApp(b []byte) (*convoy.App, error)           { return unbinApp(b) }
func decodeEndpoint(b []byte) (*convoy.Endpoint, error) { return unbinEndpoint(b) }
func decodeEvent(b []byte) (*convoy.Event, error)       { return unbinEvent(b) }

// decodeEventMeta decodes an event without its Data, for deletion.
func decodeEventMeta(b []byte) (*convoy.Event, error)   { return unbinEventMeta(b) }
func decodeDelivery(b []byte) (*convoy.Delivery, error) { return unbinDelivery(b) }
func decodeAttempt(b []byte) (*convoy.Attempt, error)   { return unbinAttempt(b) }
