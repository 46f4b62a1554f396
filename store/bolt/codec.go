package bolt

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/convoykit/convoy"
)

// The stored form of each record is a private struct encoded with
// encoding/json, kept apart from the public types so that they can change
// without changing the file format. Every read and write of a record goes
// through the encode and decode functions below, so the encoding can be
// swapped (with a schema version bump) in one place.
//
// Decoding never retains its input: the returned values own their memory,
// which matters because bbolt's slices die with their transaction.

// jtime is a time as stored: JSON null (omitted) for the zero time, Unix
// nanoseconds when they fit in an int64, RFC 3339 text otherwise. Times are
// returned in UTC, without a monotonic reading.
type jtime struct{ time.Time }

func jt(t time.Time) jtime { return jtime{t} }

// MarshalJSON implements json.Marshaler.
func (t jtime) MarshalJSON() ([]byte, error) {
	switch {
	case t.IsZero():
		return []byte("null"), nil
	case !t.Before(minKeyTime) && !t.After(maxKeyTime):
		return strconv.AppendInt(nil, t.UnixNano(), 10), nil
	}
	return t.UTC().MarshalJSON()
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *jtime) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		t.Time = time.Time{}
	case len(b) > 0 && b[0] == '"':
		var tt time.Time
		if err := tt.UnmarshalJSON(b); err != nil {
			return err
		}
		t.Time = tt.UTC()
	default:
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return err
		}
		t.Time = time.Unix(0, n).UTC()
	}
	return nil
}

type secretRec struct {
	Value     string `json:"v"`
	CreatedAt jtime  `json:"c,omitzero"`
	ExpiresAt jtime  `json:"x,omitzero"`
}

type signingRec struct {
	Scheme   string `json:"s,omitempty"`
	Hash     string `json:"h,omitempty"`
	Encoding string `json:"e,omitempty"`
	Header   string `json:"n,omitempty"`
}

type retryRec struct {
	Kind        string  `json:"k"`
	Interval    int64   `json:"i,omitempty"`
	Multiplier  float64 `json:"m,omitempty"`
	MaxInterval int64   `json:"x,omitempty"`
	Jitter      float64 `json:"j,omitempty"`
	Limit       int     `json:"l,omitempty"`
	Schedule    []int64 `json:"s"`
}

type healthRec struct {
	LastAttemptAt               jtime  `json:"a,omitzero"`
	LastStatusCode              int    `json:"c,omitempty"`
	LastError                   string `json:"e,omitempty"`
	ConsecutiveFailures         int    `json:"f,omitempty"`
	ConsecutiveFailedDeliveries int    `json:"d,omitempty"`
	FailingSince                jtime  `json:"s,omitzero"`
	LastSuccessAt               jtime  `json:"o,omitzero"`
}

type appRec struct {
	ID           string      `json:"id"`
	Name         string      `json:"n"`
	SupportEmail string      `json:"e,omitempty"`
	Secrets      []secretRec `json:"s"`
	Signing      signingRec  `json:"g,omitzero"`
	CreatedAt    jtime       `json:"c,omitzero"`
	UpdatedAt    jtime       `json:"u,omitzero"`
}

type endpointRec struct {
	ID          string            `json:"id"`
	AppID       string            `json:"a"`
	URL         string            `json:"url"`
	Description string            `json:"d,omitempty"`
	Status      string            `json:"st"`
	EventTypes  []string          `json:"t"`
	Headers     map[string]string `json:"h"`
	Secrets     []secretRec       `json:"s"`
	Signing     signingRec        `json:"g,omitzero"`
	Retry       *retryRec         `json:"r,omitempty"`
	Health      healthRec         `json:"hl,omitzero"`
	CreatedAt   jtime             `json:"c,omitzero"`
	UpdatedAt   jtime             `json:"u,omitzero"`
}

type eventRec struct {
	ID             string `json:"id"`
	AppID          string `json:"a"`
	Type           string `json:"t"`
	Data           []byte `json:"d"`
	IdempotencyKey string `json:"k,omitempty"`
	CreatedAt      jtime  `json:"c,omitzero"`
}

type deliveryRec struct {
	ID             string `json:"id"`
	EventID        string `json:"ev"`
	AppID          string `json:"a"`
	EndpointID     string `json:"ep"`
	EventType      string `json:"t"`
	Status         string `json:"st"`
	Attempts       int    `json:"n,omitempty"`
	RoundAttempts  int    `json:"r,omitempty"`
	Claims         int    `json:"cl,omitempty"`
	NextAttemptAt  jtime  `json:"na,omitzero"`
	LeaseOwner     string `json:"lo,omitempty"`
	LeaseID        string `json:"li,omitempty"`
	LeaseExpiresAt jtime  `json:"le,omitzero"`
	LastError      string `json:"e,omitempty"`
	CreatedAt      jtime  `json:"c,omitzero"`
	UpdatedAt      jtime  `json:"u,omitzero"`
}

type attemptRec struct {
	ID                string              `json:"id"`
	DeliveryID        string              `json:"dl"`
	EventID           string              `json:"ev"`
	EndpointID        string              `json:"ep"`
	Number            int                 `json:"n"`
	URL               string              `json:"url"`
	Method            string              `json:"m"`
	RequestHeaders    map[string][]string `json:"qh"`
	RequestBody       []byte              `json:"qb"`
	StatusCode        int                 `json:"sc,omitempty"`
	ResponseHeaders   map[string][]string `json:"rh"`
	ResponseBody      []byte              `json:"rb"`
	ResponseTruncated bool                `json:"rt,omitempty"`
	Error             string              `json:"e,omitempty"`
	RemoteIP          string              `json:"ip,omitempty"`
	StartedAt         jtime               `json:"s,omitzero"`
	Duration          int64               `json:"du,omitempty"`
}

func encode(kind string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convoy: bolt: encode %s: %w", kind, err)
	}
	return b, nil
}

func decode(kind string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("convoy: bolt: decode %s: %w", kind, err)
	}
	return nil
}

func toSecretRecs(s []convoy.Secret) []secretRec {
	if s == nil {
		return nil
	}
	out := make([]secretRec, len(s))
	for i, x := range s {
		out[i] = secretRec{Value: string(x.Value), CreatedAt: jt(x.CreatedAt), ExpiresAt: jt(x.ExpiresAt)}
	}
	return out
}

func fromSecretRecs(s []secretRec) []convoy.Secret {
	if s == nil {
		return nil
	}
	out := make([]convoy.Secret, len(s))
	for i, x := range s {
		out[i] = convoy.Secret{Value: convoy.SecretValue(x.Value), CreatedAt: x.CreatedAt.Time, ExpiresAt: x.ExpiresAt.Time}
	}
	return out
}

func toSigningRec(s convoy.Signing) signingRec {
	return signingRec{Scheme: string(s.Scheme), Hash: string(s.Hash), Encoding: string(s.Encoding), Header: s.Header}
}

func fromSigningRec(s signingRec) convoy.Signing {
	return convoy.Signing{
		Scheme: convoy.Scheme(s.Scheme), Hash: convoy.Hash(s.Hash),
		Encoding: convoy.Encoding(s.Encoding), Header: s.Header,
	}
}

func encodeApp(a *convoy.App) ([]byte, error) {
	return encode("app", appRec{
		ID: a.ID, Name: a.Name, SupportEmail: a.SupportEmail,
		Secrets: toSecretRecs(a.Secrets), Signing: toSigningRec(a.Signing),
		CreatedAt: jt(a.CreatedAt), UpdatedAt: jt(a.UpdatedAt),
	})
}

func decodeApp(b []byte) (*convoy.App, error) {
	var r appRec
	if err := decode("app", b, &r); err != nil {
		return nil, err
	}
	return &convoy.App{
		ID: r.ID, Name: r.Name, SupportEmail: r.SupportEmail,
		Secrets: fromSecretRecs(r.Secrets), Signing: fromSigningRec(r.Signing),
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}, nil
}

func encodeEndpoint(e *convoy.Endpoint) ([]byte, error) {
	r := endpointRec{
		ID: e.ID, AppID: e.AppID, URL: e.URL, Description: e.Description,
		Status: string(e.Status), EventTypes: e.EventTypes, Headers: e.Headers,
		Secrets: toSecretRecs(e.Secrets), Signing: toSigningRec(e.Signing),
		Health: healthRec{
			LastAttemptAt:               jt(e.Health.LastAttemptAt),
			LastStatusCode:              e.Health.LastStatusCode,
			LastError:                   e.Health.LastError,
			ConsecutiveFailures:         e.Health.ConsecutiveFailures,
			ConsecutiveFailedDeliveries: e.Health.ConsecutiveFailedDeliveries,
			FailingSince:                jt(e.Health.FailingSince),
			LastSuccessAt:               jt(e.Health.LastSuccessAt),
		},
		CreatedAt: jt(e.CreatedAt), UpdatedAt: jt(e.UpdatedAt),
	}
	if p := e.Retry; p != nil {
		rr := &retryRec{
			Kind: string(p.Kind), Interval: int64(p.Interval), Multiplier: p.Multiplier,
			MaxInterval: int64(p.MaxInterval), Jitter: p.Jitter, Limit: p.Limit,
		}
		if p.Schedule != nil {
			rr.Schedule = make([]int64, len(p.Schedule))
			for i, d := range p.Schedule {
				rr.Schedule[i] = int64(d)
			}
		}
		r.Retry = rr
	}
	return encode("endpoint", r)
}

func decodeEndpoint(b []byte) (*convoy.Endpoint, error) {
	var r endpointRec
	if err := decode("endpoint", b, &r); err != nil {
		return nil, err
	}
	e := &convoy.Endpoint{
		ID: r.ID, AppID: r.AppID, URL: r.URL, Description: r.Description,
		Status: convoy.EndpointStatus(r.Status), EventTypes: r.EventTypes, Headers: r.Headers,
		Secrets: fromSecretRecs(r.Secrets), Signing: fromSigningRec(r.Signing),
		Health: convoy.EndpointHealth{
			LastAttemptAt:               r.Health.LastAttemptAt.Time,
			LastStatusCode:              r.Health.LastStatusCode,
			LastError:                   r.Health.LastError,
			ConsecutiveFailures:         r.Health.ConsecutiveFailures,
			ConsecutiveFailedDeliveries: r.Health.ConsecutiveFailedDeliveries,
			FailingSince:                r.Health.FailingSince.Time,
			LastSuccessAt:               r.Health.LastSuccessAt.Time,
		},
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
	if rr := r.Retry; rr != nil {
		p := &convoy.RetryPolicy{
			Kind: convoy.RetryKind(rr.Kind), Interval: time.Duration(rr.Interval),
			Multiplier: rr.Multiplier, MaxInterval: time.Duration(rr.MaxInterval),
			Jitter: rr.Jitter, Limit: rr.Limit,
		}
		if rr.Schedule != nil {
			p.Schedule = make([]time.Duration, len(rr.Schedule))
			for i, d := range rr.Schedule {
				p.Schedule[i] = time.Duration(d)
			}
		}
		e.Retry = p
	}
	return e, nil
}

func encodeEvent(ev *convoy.Event) ([]byte, error) {
	return encode("event", eventRec{
		ID: ev.ID, AppID: ev.AppID, Type: ev.Type, Data: ev.Data,
		IdempotencyKey: ev.IdempotencyKey, CreatedAt: jt(ev.CreatedAt),
	})
}

func decodeEvent(b []byte) (*convoy.Event, error) {
	var r eventRec
	if err := decode("event", b, &r); err != nil {
		return nil, err
	}
	return &convoy.Event{
		ID: r.ID, AppID: r.AppID, Type: r.Type, Data: json.RawMessage(r.Data),
		IdempotencyKey: r.IdempotencyKey, CreatedAt: r.CreatedAt.Time,
	}, nil
}

func encodeDelivery(d *convoy.Delivery) ([]byte, error) {
	return encode("delivery", deliveryRec{
		ID: d.ID, EventID: d.EventID, AppID: d.AppID, EndpointID: d.EndpointID,
		EventType: d.EventType, Status: string(d.Status), Attempts: d.Attempts,
		RoundAttempts: d.RoundAttempts, Claims: d.Claims, NextAttemptAt: jt(d.NextAttemptAt),
		LeaseOwner: d.LeaseOwner, LeaseID: d.LeaseID, LeaseExpiresAt: jt(d.LeaseExpiresAt),
		LastError: d.LastError, CreatedAt: jt(d.CreatedAt), UpdatedAt: jt(d.UpdatedAt),
	})
}

func decodeDelivery(b []byte) (*convoy.Delivery, error) {
	var r deliveryRec
	if err := decode("delivery", b, &r); err != nil {
		return nil, err
	}
	return &convoy.Delivery{
		ID: r.ID, EventID: r.EventID, AppID: r.AppID, EndpointID: r.EndpointID,
		EventType: r.EventType, Status: convoy.DeliveryStatus(r.Status), Attempts: r.Attempts,
		RoundAttempts: r.RoundAttempts, Claims: r.Claims, NextAttemptAt: r.NextAttemptAt.Time,
		LeaseOwner: r.LeaseOwner, LeaseID: r.LeaseID, LeaseExpiresAt: r.LeaseExpiresAt.Time,
		LastError: r.LastError, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}, nil
}

func encodeAttempt(a *convoy.Attempt) ([]byte, error) {
	return encode("attempt", attemptRec{
		ID: a.ID, DeliveryID: a.DeliveryID, EventID: a.EventID, EndpointID: a.EndpointID,
		Number: a.Number, URL: a.URL, Method: a.Method,
		RequestHeaders: a.RequestHeaders, RequestBody: a.RequestBody,
		StatusCode: a.StatusCode, ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody,
		ResponseTruncated: a.ResponseTruncated, Error: a.Error, RemoteIP: a.RemoteIP,
		StartedAt: jt(a.StartedAt), Duration: int64(a.Duration),
	})
}

func decodeAttempt(b []byte) (*convoy.Attempt, error) {
	var r attemptRec
	if err := decode("attempt", b, &r); err != nil {
		return nil, err
	}
	return &convoy.Attempt{
		ID: r.ID, DeliveryID: r.DeliveryID, EventID: r.EventID, EndpointID: r.EndpointID,
		Number: r.Number, URL: r.URL, Method: r.Method,
		RequestHeaders: http.Header(r.RequestHeaders), RequestBody: r.RequestBody,
		StatusCode: r.StatusCode, ResponseHeaders: http.Header(r.ResponseHeaders), ResponseBody: r.ResponseBody,
		ResponseTruncated: r.ResponseTruncated, Error: r.Error, RemoteIP: r.RemoteIP,
		StartedAt: r.StartedAt.Time, Duration: time.Duration(r.Duration),
	}, nil
}
