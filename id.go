package convoy

import (
	"github.com/google/uuid"
)

// NewID returns a new time-ordered ID (a UUIDv7 in its canonical text form).
// Every record in convoy is keyed by such an ID: ordering by ID is ordering
// by creation time, which keeps B-tree inserts local and gives pagination a
// stable order. NewID is safe for concurrent use.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ValidateID reports whether id is a UUID in canonical text form (36
// characters, lower-case hex digits and hyphens, as NewID makes them),
// returning an error that wraps ErrInvalidID otherwise. field names the ID
// in the message. Upper-case IDs are refused rather than folded: stores
// key records by the ID's text, so "A1…" and "a1…" would name different
// records on one store and the same record on another.
func ValidateID(field, id string) error {
	if id == "" {
		return invalid(ErrInvalidID, field, "empty")
	}
	if len(id) != 36 {
		return invalid(ErrInvalidID, field, "not a UUID")
	}
	if _, err := uuid.Parse(id); err != nil {
		return invalid(ErrInvalidID, field, "not a UUID")
	}
	for i := range len(id) {
		if c := id[i]; 'A' <= c && c <= 'F' {
			return invalid(ErrInvalidID, field, "upper-case hex digits (IDs are lower-case)")
		}
	}
	return nil
}
