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
	"github.com/google/uuid"
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
	// The forms of schema 2.
	kindEvent2
	kindDelivery2
	kindAttempt2
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
	// Flow control, added after schema 2 shipped: records without it end
	// here, and read as no rate limit, not ordered.
	w.bool(e.Ordered)
	w.bool(e.RateLimit != nil)
	if rl := e.RateLimit; rl != nil {
		w.f64(rl.PerSecond)
		w.int(int64(rl.Burst))
	}
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
	if r.err == nil && len(r.b) > 0 {
		e.Ordered = r.bool()
		if r.bool() {
			e.RateLimit = &convoy.RateLimit{PerSecond: r.f64(), Burst: int(r.int())}
		}
	}
	return e, r.done("endpoint")
}

// Events, deliveries and attempts are written in the forms of schema 2
// (kindEvent2, kindDelivery2, kindAttempt2), which take less space: IDs as
// their 16 bytes (see wbuf.id), a delivery's status as one byte and its
// lease in a block of fixed size, so that claiming and recording do not
// grow the record and split its page, and the common header names of an
// attempt as one byte. The forms of schema 1 (kindEvent, kindDelivery,
// kindAttempt), which files migrated from it still hold, are read too.

func binEvent(ev *convoy.Event) []byte {
	w := newW(kindEvent2, 64+len(ev.Data)+len(ev.Type)+len(ev.IdempotencyKey)+len(ev.TraceParent))
	w.id(ev.ID)
	w.id(ev.AppID)
	w.str(ev.Type)
	w.bytes(ev.Data)
	w.str(ev.IdempotencyKey)
	w.time(ev.CreatedAt)
	// The trace context, added after schema 2 shipped: written only when
	// there is one, so records without it are as before, and read as
	// none.
	if ev.TraceParent != "" {
		w.str(ev.TraceParent)
	}
	return w.b
}

func unbinEvent(b []byte) (*convoy.Event, error) {
	return unbinEventData(b, true)
}

// unbinEventMeta is unbinEvent without the Data, which it does not copy.
func unbinEventMeta(b []byte) (*convoy.Event, error) {
	return unbinEventData(b, false)
}

func unbinEventData(b []byte, data bool) (*convoy.Event, error) {
	r, v2 := newR2(b, kindEvent, kindEvent2)
	ev := &convoy.Event{ID: r.idOr(v2), AppID: r.idOr(v2), Type: r.str()}
	if data {
		ev.Data = r.bytes()
	} else {
		r.raw()
	}
	ev.IdempotencyKey, ev.CreatedAt = r.str(), r.time()
	if r.err == nil && len(r.b) > 0 {
		ev.TraceParent = r.str()
	}
	return ev, r.done("event")
}

func binDelivery(d *convoy.Delivery) []byte {
	w := newW(kindDelivery2, 192+len(d.EventType)+len(d.LastError))
	w.id(d.ID)
	w.id(d.EventID)
	w.id(d.AppID)
	w.id(d.EndpointID)
	w.str(d.EventType)
	w.status(d.Status)
	w.int(int64(d.Attempts))
	w.int(int64(d.RoundAttempts))
	w.int(int64(d.Claims))
	w.time(d.NextAttemptAt)
	w.lease(d)
	w.str(d.LastError)
	w.time(d.CreatedAt)
	w.time(d.UpdatedAt)
	return w.b
}

func unbinDelivery(b []byte) (*convoy.Delivery, error) {
	r, v2 := newR2(b, kindDelivery, kindDelivery2)
	d := &convoy.Delivery{ID: r.idOr(v2), EventID: r.idOr(v2), AppID: r.idOr(v2), EndpointID: r.idOr(v2), EventType: r.str()}
	if v2 {
		d.Status = r.status()
	} else {
		d.Status = convoy.DeliveryStatus(r.str())
	}
	d.Attempts, d.RoundAttempts, d.Claims = int(r.int()), int(r.int()), int(r.int())
	d.NextAttemptAt = r.time()
	if v2 {
		r.lease(d)
	} else {
		d.LeaseOwner, d.LeaseID = r.str(), r.str()
		d.LeaseExpiresAt = r.time()
	}
	d.LastError = r.str()
	d.CreatedAt, d.UpdatedAt = r.time(), r.time()
	return d, r.done("delivery")
}

// deliveryFinal reports whether the encoded delivery b is in a final
// status, reading only what precedes the status.
func deliveryFinal(b []byte) (bool, error) {
	r, v2 := newR2(b, kindDelivery, kindDelivery2)
	for range 4 { // ID, EventID, AppID, EndpointID
		r.skipID(v2)
	}
	r.raw() // EventType
	var st convoy.DeliveryStatus
	if v2 {
		st = r.status()
	} else {
		st = convoy.DeliveryStatus(r.raw())
	}
	if r.err != nil {
		return false, fmt.Errorf("convoy: bolt: decode delivery: %w", r.err)
	}
	return st.Final(), nil
}

func binAttempt(a *convoy.Attempt) []byte {
	w := newW(kindAttempt2, 384+len(a.URL)+len(a.RequestBody)+len(a.ResponseBody)+len(a.Error))
	w.id(a.ID)
	w.id(a.DeliveryID)
	w.id(a.EventID)
	w.id(a.EndpointID)
	w.int(int64(a.Number))
	w.str(a.URL)
	w.str(a.Method)
	w.header2(a.RequestHeaders)
	w.bytes(a.RequestBody)
	w.int(int64(a.StatusCode))
	w.header2(a.ResponseHeaders)
	w.bytes(a.ResponseBody)
	w.bool(a.ResponseTruncated)
	w.str(a.Error)
	w.str(a.RemoteIP)
	w.time(a.StartedAt)
	w.int(int64(a.Duration))
	return w.b
}

func unbinAttempt(b []byte) (*convoy.Attempt, error) {
	r, v2 := newR2(b, kindAttempt, kindAttempt2)
	header := r.header
	if v2 {
		header = r.header2
	}
	a := &convoy.Attempt{ID: r.idOr(v2), DeliveryID: r.idOr(v2), EventID: r.idOr(v2), EndpointID: r.idOr(v2), Number: int(r.int()),
		URL: r.str(), Method: r.str(), RequestHeaders: header(), RequestBody: r.bytes(), StatusCode: int(r.int()),
		ResponseHeaders: header(), ResponseBody: r.bytes(), ResponseTruncated: r.bool(), Error: r.str(), RemoteIP: r.str()}
	a.StartedAt = r.time()
	a.Duration = time.Duration(r.int())
	return a, r.done("attempt")
}

// newR2 reads a record of kind v1 (schema 1's form) or v2, and reports
// which.
func newR2(b []byte, v1, v2 byte) (*rbuf, bool) {
	if len(b) >= 2 && b[1] == v2 {
		return newR(b, v2), true
	}
	return newR(b, v1), false
}

// id writes an ID: a canonical UUID (lower-case hex, as convoy.NewID makes
// them) as a 1 and its 16 bytes, anything else (upper-case hex, an empty
// or foreign lease ID) as a 0 and the text, so that it reads back as it
// was.
func (w *wbuf) id(s string) {
	if u, ok := parseCanonicalUUID(s); ok {
		w.b = append(w.b, 1)
		w.b = append(w.b, u[:]...)
		return
	}
	w.b = append(w.b, 0)
	w.str(s)
}

// idOr reads an ID that wbuf.id wrote if v2, else a string.
func (r *rbuf) idOr(v2 bool) string {
	if !v2 {
		return r.str()
	}
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return ""
	}
	tag := r.b[0]
	r.b = r.b[1:]
	if tag == 0 {
		return r.str()
	}
	if len(r.b) < 16 {
		r.fail()
		return ""
	}
	s := uuid.UUID(r.b[:16]).String()
	r.b = r.b[16:]
	return s
}

// skipID skips what idOr(v2) would read.
func (r *rbuf) skipID(v2 bool) {
	if !v2 {
		r.raw()
		return
	}
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return
	}
	tag := r.b[0]
	r.b = r.b[1:]
	if tag == 0 {
		r.raw()
	} else if len(r.b) < 16 {
		r.fail()
	} else {
		r.b = r.b[16:]
	}
}

// parseCanonicalUUID parses s if it is a UUID in canonical lower-case
// text form.
func parseCanonicalUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		i += 2
		j++
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// status writes a delivery status as one byte: its place in
// convoy.DeliveryStatuses plus one, or 0 and the text for another value.
func (w *wbuf) status(st convoy.DeliveryStatus) {
	if i := slices.Index(convoy.DeliveryStatuses, st); i >= 0 {
		w.b = append(w.b, byte(i+1))
		return
	}
	w.b = append(w.b, 0)
	w.str(string(st))
}

func (r *rbuf) status() convoy.DeliveryStatus {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return ""
	}
	c := int(r.b[0])
	r.b = r.b[1:]
	switch {
	case c == 0:
		return convoy.DeliveryStatus(r.str())
	case c <= len(convoy.DeliveryStatuses):
		return convoy.DeliveryStatuses[c-1]
	}
	r.err = fmt.Errorf("bad status code %d", c)
	return ""
}

// leaseOwnerRoom is the room a delivery record keeps for its lease
// owner, the length of a convoy.NewID: the Dispatcher names itself so.
const leaseOwnerRoom = 36

// lease writes a delivery's lease in a block whose size does not depend
// on whether the delivery is leased, so that claiming and releasing it do
// not change the record's size: a 1 and the lease ID's 16 bytes (a 0 and
// 16 zero bytes when there is none; a 2 and the text for an ID that is not
// a canonical UUID), the expiry as 8 bytes of Unix nanoseconds (0 for the
// zero time) after a 0 (or a 1 and the time's binary form, outside the
// years 1678 to 2262), and the owner's length and text padded with zero
// bytes to leaseOwnerRoom.
//
// The block takes 63 bytes for a lease of the Dispatcher's.
func (w *wbuf) lease(d *convoy.Delivery) {
	switch u, ok := parseCanonicalUUID(d.LeaseID); {
	case ok:
		w.b = append(w.b, 1)
		w.b = append(w.b, u[:]...)
	case d.LeaseID == "":
		w.b = append(w.b, 0)
		w.b = append(w.b, make([]byte, 16)...)
	default:
		w.b = append(w.b, 2)
		w.str(d.LeaseID)
	}
	switch t := d.LeaseExpiresAt; {
	case t.IsZero():
		w.b = append(w.b, 0)
		w.b = binary.BigEndian.AppendUint64(w.b, 0)
	case !t.Before(minKeyTime) && !t.After(maxKeyTime) && t.UnixNano() != 0:
		w.b = append(w.b, 0)
		w.b = binary.BigEndian.AppendUint64(w.b, uint64(t.UnixNano()))
	default: // far times, and the Unix epoch, which 0 would read as zero
		w.b = append(w.b, 1)
		m, _ := t.UTC().MarshalBinary()
		w.bytes(m)
	}
	w.str(d.LeaseOwner)
	if n := len(d.LeaseOwner); n < leaseOwnerRoom {
		w.b = append(w.b, make([]byte, leaseOwnerRoom-n)...)
	}
}

func (r *rbuf) lease(d *convoy.Delivery) {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return
	}
	tag := r.b[0]
	r.b = r.b[1:]
	switch tag {
	case 0, 1:
		if len(r.b) < 16 {
			r.fail()
			return
		}
		if tag == 1 {
			d.LeaseID = uuid.UUID(r.b[:16]).String()
		}
		r.b = r.b[16:]
	default:
		d.LeaseID = r.str()
	}
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return
	}
	tag = r.b[0]
	r.b = r.b[1:]
	if tag == 0 {
		if len(r.b) < 8 {
			r.fail()
			return
		}
		if n := int64(binary.BigEndian.Uint64(r.b)); n != 0 {
			d.LeaseExpiresAt = time.Unix(0, n).UTC()
		}
		r.b = r.b[8:]
	} else {
		var t time.Time
		if err := t.UnmarshalBinary(r.raw()); err != nil && r.err == nil {
			r.err = err
		}
		d.LeaseExpiresAt = t.UTC()
	}
	d.LeaseOwner = r.str()
	if n := len(d.LeaseOwner); n < leaseOwnerRoom && r.err == nil {
		if len(r.b) < leaseOwnerRoom-n {
			r.fail()
			return
		}
		r.b = r.b[leaseOwnerRoom-n:]
	}
}

// commonHeaders are header names an attempt record writes as one byte,
// their place here plus one: the headers the Dispatcher sends and those
// web servers commonly answer with, in canonical form. Only append to it:
// the places are part of the file format.
var commonHeaders = [...]string{
	"Accept", "Accept-Encoding", "Access-Control-Allow-Origin", "Age", "Alt-Svc",
	"Authorization", "Cache-Control", "Cf-Cache-Status", "Cf-Ray", "Connection",
	"Content-Encoding", "Content-Length", "Content-Security-Policy", "Content-Type", "Date",
	"Etag", "Expires", "Keep-Alive", "Last-Modified", "Location",
	"Nel", "Permissions-Policy", "Pragma", "Referrer-Policy", "Report-To",
	"Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security", "Transfer-Encoding",
	"User-Agent", "Vary", "Via", "Webhook-Id", "Webhook-Signature",
	"Webhook-Timestamp", "X-Amzn-Requestid", "X-Amzn-Trace-Id", "X-Cache", "X-Content-Type-Options",
	"X-Convoy-Attempt", "X-Convoy-Delivery-Id", "X-Convoy-Event-Id", "X-Convoy-Event-Type", "X-Convoy-Idempotency-Key",
	"X-Convoy-Signature", "X-Frame-Options", "X-Powered-By", "X-Request-Id", "X-Xss-Protection",
}

// commonHeader maps a name of commonHeaders to its byte.
var commonHeader = func() map[string]byte {
	m := make(map[string]byte, len(commonHeaders))
	for i, h := range commonHeaders {
		m[h] = byte(i + 1)
	}
	return m
}()

// header2 writes h as header does, with each name of commonHeaders as its
// byte and any other as a 0 and the text.
func (w *wbuf) header2(h http.Header) {
	if h == nil {
		w.int(-1)
		return
	}
	w.int(int64(len(h)))
	for _, k := range slices.Sorted(maps.Keys(h)) { // deterministic
		if c, ok := commonHeader[k]; ok {
			w.b = append(w.b, c)
		} else {
			w.b = append(w.b, 0)
			w.str(k)
		}
		vs := h[k]
		w.int(int64(len(vs)))
		for _, v := range vs {
			w.str(v)
		}
	}
}

func (r *rbuf) header2() http.Header {
	n := r.count()
	if n < 0 {
		return nil
	}
	h := make(http.Header, n)
	for range n {
		if r.err != nil || len(r.b) < 1 {
			r.fail()
			return nil
		}
		c := int(r.b[0])
		r.b = r.b[1:]
		var k string
		switch {
		case c == 0:
			k = r.str()
		case c <= len(commonHeaders):
			k = commonHeaders[c-1]
		default:
			r.err = fmt.Errorf("bad header code %d", c)
			return nil
		}
		m := r.count()
		vs := make([]string, 0, max(m, 0))
		for range m {
			vs = append(vs, r.str())
		}
		h[k] = vs
	}
	return h
}
