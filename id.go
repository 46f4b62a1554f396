package convoy

import (
	"strings"

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
// characters: hex digits, of either case, and hyphens), returning an
// error that wraps ErrInvalidID otherwise. field names the ID in the
// message.
//
// Dispatcher methods take IDs in either case and fold them to lower case,
// the form NewID makes and every store keys records by: "A1…" and "a1…"
// name the same record on every store.
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
	return nil
}

// checkID validates *id with ValidateID and folds it to lower case (see
// ValidateID).
func checkID(field string, id *string) error {
	if err := ValidateID(field, *id); err != nil {
		return err
	}
	*id = strings.ToLower(*id)
	return nil
}
