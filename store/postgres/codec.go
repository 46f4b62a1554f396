package postgres

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/convoykit/convoy"
)

// Times are stored as Unix nanoseconds (bigint), so that what comes back
// is exactly what went in; NULL is the zero time. That covers the years
// 1678 to 2262.

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// minNanos stands for the zero time where a column cannot be NULL
// (events.created_at and deliveries.created_at, which lists order by) and
// in due_at (a delivery due at the zero time is due at once).
const minNanos int64 = math.MinInt64

// sortNanos encodes t for a NOT NULL column.
func sortNanos(t time.Time) int64 {
	if t.IsZero() {
		return minNanos
	}
	return t.UnixNano()
}

// fromSortNanos decodes a value written by sortNanos.
func fromSortNanos(n int64) time.Time {
	if n == minNanos {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nanos encodes t as a nullable bigint.
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// fromNanos decodes a nullable bigint written by nanos.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// clampNanos is t as nanoseconds for a comparison, the zero time and
// times out of range mapped to the ends of the range.
func clampNanos(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Before(minTime):
		return minNanos
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// checkTimes reports a non-zero time the store cannot represent.
func checkTimes(field string, ts ...time.Time) error {
	for _, t := range ts {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return fmt.Errorf("%w: %s %v is outside the years 1678 to 2262", convoy.ErrInvalid, field, t)
		}
	}
	return nil
}

// dueNanos is the due_at of a delivery in status st due at next: nil once
// final; a zero next is due at once.
func dueNanos(st convoy.DeliveryStatus, next time.Time) *int64 {
	if st.Final() {
		return nil
	}
	n := sortNanos(next)
	return &n
}

// secretDoc is a Secret as stored. Secret values are written in full:
// convoy.SecretValue redacts itself in JSON.
type secretDoc struct {
	Value     string `json:"value"`
	CreatedAt *int64 `json:"created_at,omitempty"`
	ExpiresAt *int64 `json:"expires_at,omitempty"`
}

func encodeSecrets(ss []convoy.Secret) []byte {
	docs := make([]secretDoc, len(ss))
	for i, s := range ss {
		docs[i] = secretDoc{Value: string(s.Value), CreatedAt: nanos(s.CreatedAt), ExpiresAt: nanos(s.ExpiresAt)}
	}
	return mustJSON(docs)
}

func decodeSecrets(b []byte) ([]convoy.Secret, error) {
	var docs []secretDoc
	if err := json.Unmarshal(b, &docs); err != nil {
		return nil, decodeErr("secrets", err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	out := make([]convoy.Secret, len(docs))
	for i, d := range docs {
		out[i] = convoy.Secret{Value: convoy.SecretValue(d.Value), CreatedAt: fromNanos(d.CreatedAt), ExpiresAt: fromNanos(d.ExpiresAt)}
	}
	return out, nil
}

// healthDoc is an EndpointHealth as stored.
type healthDoc struct {
	LastAttemptAt               *int64 `json:"last_attempt_at,omitempty"`
	LastStatusCode              int    `json:"last_status_code,omitempty"`
	LastError                   string `json:"last_error,omitempty"`
	ConsecutiveFailures         int    `json:"consecutive_failures,omitempty"`
	ConsecutiveFailedDeliveries int    `json:"consecutive_failed_deliveries,omitempty"`
	FailingSince                *int64 `json:"failing_since,omitempty"`
	LastSuccessAt               *int64 `json:"last_success_at,omitempty"`
}

func encodeHealth(h convoy.EndpointHealth) []byte {
	return mustJSON(healthDoc{
		LastAttemptAt:               nanos(h.LastAttemptAt),
		LastStatusCode:              h.LastStatusCode,
		LastError:                   h.LastError,
		ConsecutiveFailures:         h.ConsecutiveFailures,
		ConsecutiveFailedDeliveries: h.ConsecutiveFailedDeliveries,
		FailingSince:                nanos(h.FailingSince),
		LastSuccessAt:               nanos(h.LastSuccessAt),
	})
}

func decodeHealth(b []byte) (convoy.EndpointHealth, error) {
	var d healthDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return convoy.EndpointHealth{}, decodeErr("health", err)
	}
	return convoy.EndpointHealth{
		LastAttemptAt:               fromNanos(d.LastAttemptAt),
		LastStatusCode:              d.LastStatusCode,
		LastError:                   d.LastError,
		ConsecutiveFailures:         d.ConsecutiveFailures,
		ConsecutiveFailedDeliveries: d.ConsecutiveFailedDeliveries,
		FailingSince:                fromNanos(d.FailingSince),
		LastSuccessAt:               fromNanos(d.LastSuccessAt),
	}, nil
}

// encodeHeaders stores a header as JSON, nil as SQL NULL.
func encodeHeaders(h http.Header) []byte {
	if h == nil {
		return nil
	}
	return mustJSON(h)
}

func decodeHeaders(b []byte) (http.Header, error) {
	if b == nil {
		return nil, nil
	}
	var h http.Header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, decodeErr("headers", err)
	}
	return h, nil
}

// mustJSON marshals values that cannot fail to marshal (strings, numbers,
// slices and maps of them).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("convoy: postgres: marshal %T: %v", v, err))
	}
	return b
}

func decodeJSON(field string, b []byte, v any) error {
	if b == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return decodeErr(field, err)
	}
	return nil
}

func decodeErr(field string, err error) error {
	return fmt.Errorf("convoy: postgres: stored %s do not decode: %w", field, err)
}

// uuids is ids as the parameter of a uuid[]. Given a []string for one,
// pgx tries the binary format, fails, formats the whole slice into an
// error it throws away and sends text: about 5% of a saturated
// dispatcher's CPU on this store. []pgtype.UUID goes as binary at once,
// 16 bytes an ID instead of 37. A string that is not a UUID (IDs are
// checked before they get here) leaves ids as they are, for PostgreSQL
// to refuse; nil stays NULL.
func uuids(ids []string) any {
	if ids == nil {
		return []pgtype.UUID(nil)
	}
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return ids
		}
		out[i] = pgtype.UUID{Bytes: u, Valid: true}
	}
	return out
}
