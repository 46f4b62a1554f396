package main

import (
	"errors"
	"net/http"
	"sync"

	"github.com/convoykit/convoy"
)

// route is one path of the receiver and the signature scheme of the
// requests it takes. The sender's endpoint and the receiver's Verifier must
// use the same Signing.
type route struct {
	Path    string
	Name    string
	Signing convoy.Signing
}

// routes has one path per signature scheme convoy can sign with.
var routes = []route{
	{"/simple", "Convoy simple", convoy.Signing{Scheme: convoy.SchemeConvoySimple}},
	{"/advanced", "Convoy advanced", convoy.Signing{Scheme: convoy.SchemeConvoyAdvanced}},
	{"/standard", "Standard Webhooks", convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}},
}

// received is a request the receiver accepted or refused.
type received struct {
	Path   string
	Header http.Header
	Body   []byte
	Err    error // nil when accepted
}

// receiver is the customer's side: an http.Handler that verifies the
// signature of every webhook before it trusts the body, and refuses with 401
// the requests that do not verify. It keeps what it saw so the example can
// show it.
type receiver struct {
	mux *http.ServeMux

	mu  sync.Mutex
	log []received
}

// newReceiver returns a receiver that checks signatures with secret, the
// app's signing secret shared with the sender.
func newReceiver(secret convoy.SecretValue) *receiver {
	rc := &receiver{mux: http.NewServeMux()}
	for _, rt := range routes {
		v := &convoy.Verifier{Signing: rt.Signing, Secrets: []convoy.SecretValue{secret}}
		rc.mux.Handle("POST "+rt.Path, rc.verified(v))
	}
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) { rc.mux.ServeHTTP(w, r) }

// verified checks each request with v. VerifyRequest reads the raw body
// (the signature covers the bytes as sent) and returns it once verified.
func (rc *receiver) verified(v *convoy.Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := v.VerifyRequest(r)
		rc.mu.Lock()
		rc.log = append(rc.log, received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Err: err})
		rc.mu.Unlock()
		if err != nil {
			http.Error(w, "webhook refused: "+reason(err), http.StatusUnauthorized)
			return
		}
		// Verified: handle the event here. Delivery is at least once, so
		// deduplicate on the X-Convoy-Delivery-ID (or webhook-id) header.
		w.WriteHeader(http.StatusNoContent)
	})
}

// seen returns what the receiver has seen, oldest first.
func (rc *receiver) seen() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.log...)
}

// reason names the sentinel error a verification error wraps.
func reason(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{convoy.ErrSignatureMismatch, "convoy.ErrSignatureMismatch"},
		{convoy.ErrMissingSignature, "convoy.ErrMissingSignature"},
		{convoy.ErrMalformedSignature, "convoy.ErrMalformedSignature"},
		{convoy.ErrTimestampExpired, "convoy.ErrTimestampExpired"},
		{convoy.ErrPayloadTooLarge, "convoy.ErrPayloadTooLarge"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other error"
}
