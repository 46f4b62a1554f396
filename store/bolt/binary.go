package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/convoykit/convoy"
)

// The hot records (deliveries, events, attempts, and the endpoints and
// apps read for every attempt) are stored in a compact binary form: a tag
// byte, then the fields in a fixed order, strings and byte slices as a
// uvarint length and the bytes, integers as varints, times as a kind byte
// and Unix nanoseconds. It costs a fraction of encoding/json (no
// reflection, no base64 for bodies) on the committer's single goroutine.
const binTag = 0xB1

var errShort = errors.New("truncated record")

type wbuf struct{ b []byte }

func newW(kind byte, size int) *wbuf {
	w := &wbuf{b: make([]byte, 0, size)}
	w.b = append(w.b, binTag, kind)
	return w
}

func (w *wbuf) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *wbuf) bytes(p []byte) {
	w.b = binary.AppendUvarint(w.b, uint64(len(p)))
	w.b = append(w.b, p...)
}
func (w *wbuf) int(n int64)   { w.b = binary.AppendVarint(w.b, n) }
func (w *wbuf) f64(f float64) { w.b = binary.BigEndian.AppendUint64(w.b, math.Float64bits(f)) }
func (w *wbuf) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *wbuf) time(t time.Time) {
	switch {
	case t.IsZero():
		w.b = append(w.b, 0)
	case !t.Before(minKeyTime) && !t.After(maxKeyTime):
		w.b = append(w.b, 1)
		w.int(t.UnixNano())
	default:
		w.b = append(w.b, 2)
		m, _ := t.UTC().MarshalBinary()
		w.bytes(m)
	}
}

func (w *wbuf) header(h http.Header) {
	if h == nil {
		w.int(-1)
		return
	}
	w.int(int64(len(h)))
	for _, k := range slices.Sorted(maps.Keys(h)) { // deterministic
		vs := h[k]
		w.str(k)
		w.int(int64(len(vs)))
		for _, v := range vs {
			w.str(v)
		}
	}
}

func (w *wbuf) secrets(s []convoy.Secret) {
	w.int(int64(len(s)))
	for _, x := range s {
		w.str(string(x.Value))
		w.time(x.CreatedAt)
		w.time(x.ExpiresAt)
	}
}

func (w *wbuf) signing(s convoy.Signing) {
	w.str(string(s.Scheme))
	w.str(string(s.Hash))
	w.str(string(s.Encoding))
	w.str(s.Header)
}

// rbuf reads what wbuf wrote; the first error sticks and zero values are
// returned after it.
type rbuf struct {
	b   []byte
	err error
}

func newR(b []byte, kind byte) *rbuf {
	r := &rbuf{b: b}
	if len(b) < 2 || b[0] != binTag || b[1] != kind {
		r.err = fmt.Errorf("bad record tag")
		return r
	}
	r.b = b[2:]
	return r
}

func (r *rbuf) fail() { r.err = errShort; r.b = nil }

func (r *rbuf) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// raw returns the next length-prefixed bytes, aliasing the input.
func (r *rbuf) raw() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *rbuf) str() string { return string(r.raw()) }

// bytes returns a copy (bbolt's memory dies with the transaction); nil
// stays nil only for empty input.
func (r *rbuf) bytes() []byte {
	p := r.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (r *rbuf) f64() float64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *rbuf) bool() bool {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

func (r *rbuf) time() time.Time {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return time.Time{}
	}
	kind := r.b[0]
	r.b = r.b[1:]
	switch kind {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, r.int()).UTC()
	default:
		var t time.Time
		if err := t.UnmarshalBinary(r.raw()); err != nil && r.err == nil {
			r.err = err
		}
		return t.UTC()
	}
}

func (r *rbuf) count() int {
	n := r.int()
	if n < -1 || n > int64(len(r.b)) { // every element takes at least a byte
		r.fail()
		return 0
	}
	return int(n)
}

func (r *rbuf) header() http.Header {
	n := r.count()
	if n < 0 {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k := r.str()
		m := r.count()
		vs := make([]string, 0, max(m, 0))
		for range m {
			vs = append(vs, r.str())
		}
		h[k] = vs
	}
	return h
}

func (r *rbuf) secrets() []convoy.Secret {
	n := r.count()
	if n <= 0 {
		return nil
	}
	out := make([]convoy.Secret, n)
	for i := range out {
		out[i] = convoy.Secret{Value: convoy.SecretValue(r.str()), CreatedAt: r.time(), ExpiresAt: r.time()}
	}
	return out
}

func (r *rbuf) signing() convoy.Signing {
	return convoy.Signing{
		Scheme: convoy.Scheme(r.str()), Hash: convoy.Hash(r.str()),
		Encoding: convoy.Encoding(r.str()), Header: r.str(),
	}
}

func (r *rbuf) done(kind string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("convoy: bolt: decode %s: %w", kind, r.err)
	}
	return nil
}

// Record kinds, the second byte of a binary record.
const (
	kindApp byte = iota + 1
	kindEndpoint
	kindEvent
	kindDelivery
	kindAttempt
)

func binApp(a *convoy.App) []byte {
	w := newW(kindApp, 128+len(a.Name))
	w.str(a.ID)
	w.str(a.Name)
	w.str(a.SupportEmail)
	w.secrets(a.Secrets)
	w.signing(a.Signing)
	w.time(a.CreatedAt)
	w.time(a.UpdatedAt)
	return w.b
}

func unbinApp(b []byte) (*convoy.App, error) {
	r := newR(b, kindApp)
	a := &convoy.App{ID: r.str(), Name: r.str(), SupportEmail: r.str(), Secrets: r.secrets(), Signing: r.signing()}
	a.CreatedAt, a.UpdatedAt = r.time(), r.time()
	return a, r.done("app")
}

func binEndpoint(e *convoy.Endpoint) []byte {
	w := newW(kindEndpoint, 256+len(e.URL))
	w.str(e.ID)
	w.str(e.AppID)
	w.str(e.URL)
	w.str(e.Description)
	w.str(string(e.Status))
	if e.EventTypes == nil {
		w.int(-1)
	} else {
		w.int(int64(len(e.EventTypes)))
		for _, t := range e.EventTypes {
			w.str(t)
		}
	}
	if e.Headers == nil {
		w.int(-1)
	} else {
		w.int(int64(len(e.Headers)))
		for _, k := range slices.Sorted(maps.Keys(e.Headers)) { // deterministic
			w.str(k)
			w.str(e.Headers[k])
		}
	}
	w.secrets(e.Secrets)
	w.signing(e.Signing)
	w.bool(e.Retry != nil)
	if p := e.Retry; p != nil {
		w.str(string(p.Kind))
		w.int(int64(p.Interval))
		w.f64(p.Multiplier)
		w.int(int64(p.MaxInterval))
		w.f64(p.Jitter)
		w.int(int64(p.Limit))
		if p.Schedule == nil {
			w.int(-1)
		} else {
			w.int(int64(len(p.Schedule)))
			for _, d := range p.Schedule {
				w.int(int64(d))
			}
		}
	}
	h := e.Health
	w.time(h.LastAttemptAt)
	w.int(int64(h.LastStatusCode))
	w.str(h.LastError)
	w.int(int64(h.ConsecutiveFailures))
	w.int(int64(h.ConsecutiveFailedDeliveries))
	w.time(h.FailingSince)
	w.time(h.LastSuccessAt)
	w.time(e.CreatedAt)
	w.time(e.UpdatedAt)
	return w.b
}

func unbinEndpoint(b []byte) (*convoy.Endpoint, error) {
	r := newR(b, kindEndpoint)
	e := &convoy.Endpoint{ID: r.str(), AppID: r.str(), URL: r.str(), Description: r.str(), Status: convoy.EndpointStatus(r.str())}
	if n := r.count(); n >= 0 {
		e.EventTypes = make([]string, n)
		for i := range e.EventTypes {
			e.EventTypes[i] = r.str()
		}
	}
	if n := r.count(); n >= 0 {
		e.Headers = make(map[string]string, n)
		for range n {
			k := r.str()
			e.Headers[k] = r.str()
		}
	}
	e.Secrets = r.secrets()
	e.Signing = r.signing()
	if r.bool() {
		p := &convoy.RetryPolicy{Kind: convoy.RetryKind(r.str()), Interval: time.Duration(r.int()), Multiplier: r.f64(),
			MaxInterval: time.Duration(r.int()), Jitter: r.f64(), Limit: int(r.int())}
		if n := r.count(); n >= 0 {
			p.Schedule = make([]time.Duration, n)
			for i := range p.Schedule {
				p.Schedule[i] = time.Duration(r.int())
			}
		}
		e.Retry = p
	}
	e.Health = convoy.EndpointHealth{
		LastAttemptAt: r.time(), LastStatusCode: int(r.int()), LastError: r.str(),
		ConsecutiveFailures: int(r.int()), ConsecutiveFailedDeliveries: int(r.int()),
		FailingSince: r.time(), LastSuccessAt: r.time(),
	}
	e.CreatedAt, e.UpdatedAt = r.time(), r.time()
	return e, r.done("endpoint")
}

func binEvent(ev *convoy.Event) []byte {
	w := newW(kindEvent, 128+len(ev.Data)+len(ev.Type)+len(ev.IdempotencyKey))
	w.str(ev.ID)
	w.str(ev.AppID)
	w.str(ev.Type)
	w.bytes(ev.Data)
	w.str(ev.IdempotencyKey)
	w.time(ev.CreatedAt)
	return w.b
}

func unbinEvent(b []byte) (*convoy.Event, error) {
	r := newR(b, kindEvent)
	ev := &convoy.Event{ID: r.str(), AppID: r.str(), Type: r.str(), Data: r.bytes(), IdempotencyKey: r.str(), CreatedAt: r.time()}
	return ev, r.done("event")
}

func binDelivery(d *convoy.Delivery) []byte {
	w := newW(kindDelivery, 256+len(d.LastError))
	w.str(d.ID)
	w.str(d.EventID)
	w.str(d.AppID)
	w.str(d.EndpointID)
	w.str(d.EventType)
	w.str(string(d.Status))
	w.int(int64(d.Attempts))
	w.int(int64(d.RoundAttempts))
	w.int(int64(d.Claims))
	w.time(d.NextAttemptAt)
	w.str(d.LeaseOwner)
	w.str(d.LeaseID)
	w.time(d.LeaseExpiresAt)
	w.str(d.LastError)
	w.time(d.CreatedAt)
	w.time(d.UpdatedAt)
	return w.b
}

func unbinDelivery(b []byte) (*convoy.Delivery, error) {
	r := newR(b, kindDelivery)
	d := &convoy.Delivery{ID: r.str(), EventID: r.str(), AppID: r.str(), EndpointID: r.str(), EventType: r.str(),
		Status: convoy.DeliveryStatus(r.str()), Attempts: int(r.int()), RoundAttempts: int(r.int()), Claims: int(r.int())}
	d.NextAttemptAt = r.time()
	d.LeaseOwner, d.LeaseID = r.str(), r.str()
	d.LeaseExpiresAt = r.time()
	d.LastError = r.str()
	d.CreatedAt, d.UpdatedAt = r.time(), r.time()
	return d, r.done("delivery")
}

func binAttempt(a *convoy.Attempt) []byte {
	w := newW(kindAttempt, 512+len(a.RequestBody)+len(a.ResponseBody))
	w.str(a.ID)
	w.str(a.DeliveryID)
	w.str(a.EventID)
	w.str(a.EndpointID)
	w.int(int64(a.Number))
	w.str(a.URL)
	w.str(a.Method)
	w.header(a.RequestHeaders)
	w.bytes(a.RequestBody)
	w.int(int64(a.StatusCode))
	w.header(a.ResponseHeaders)
	w.bytes(a.ResponseBody)
	w.bool(a.ResponseTruncated)
	w.str(a.Error)
	w.str(a.RemoteIP)
	w.time(a.StartedAt)
	w.int(int64(a.Duration))
	return w.b
}

func unbinAttempt(b []byte) (*convoy.Attempt, error) {
	r := newR(b, kindAttempt)
	a := &convoy.Attempt{ID: r.str(), DeliveryID: r.str(), EventID: r.str(), EndpointID: r.str(), Number: int(r.int()),
		URL: r.str(), Method: r.str(), RequestHeaders: r.header(), RequestBody: r.bytes(), StatusCode: int(r.int()),
		ResponseHeaders: r.header(), ResponseBody: r.bytes(), ResponseTruncated: r.bool(), Error: r.str(), RemoteIP: r.str()}
	a.StartedAt = r.time()
	a.Duration = time.Duration(r.int())
	return a, r.done("attempt")
}
