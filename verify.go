package convoy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Receiver defaults.
const (
	// DefaultTolerance is how far a signed timestamp may lie from the
	// receiver's clock, in either direction, before it is refused.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes is the largest body Verifier.VerifyRequest reads.
	DefaultMaxBodyBytes = 1 << 20
)

// Verifier checks the signatures of webhooks received from convoy (or any
// sender of the same schemes) in a plain http.Handler:
//
//	v := &convoy.Verifier{Secrets: []convoy.SecretValue{secret}}
//	body, err := v.VerifyRequest(r)
//	if err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// The zero value of each field is its documented default, except Secrets,
// which must hold at least one secret. A Verifier is safe for concurrent use
// as long as its fields are not changed while it is in use.
type Verifier struct {
	// Signing is the scheme the sender uses, with the same defaults as
	// signing: the zero value means Convoy advanced, SHA256, hex, in
	// X-Convoy-Signature. Hash, Encoding and Header are ignored for
	// Standard Webhooks.
	Signing Signing
	// Secrets are the secrets a signature may match. Several are accepted,
	// so the sender can rotate secrets: a request verifies when any
	// signature it carries matches any of them. The Convoy schemes use each
	// secret's text as the key; Standard Webhooks needs the "whsec_<base64>"
	// form. Secrets never appear in errors or in fmt output.
	Secrets []SecretValue
	// Tolerance is how far the signed timestamp may lie from Now, in either
	// direction (Convoy advanced and Standard Webhooks). Zero or negative
	// means DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// MaxBodyBytes bounds the body VerifyRequest reads. Zero or negative
	// means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
}

// Verify checks the signature headers h against the raw request body. It
// returns nil when a signature matches one of v.Secrets, and otherwise an
// error wrapping one of:
//
//   - ErrMissingSignature: a signature header (for Standard Webhooks, one of
//     webhook-id, webhook-timestamp, webhook-signature) is absent or empty.
//   - ErrMalformedSignature: a header cannot be parsed (garbled, truncated,
//     repeated, too long, more than 32 signatures).
//   - ErrTimestampExpired: the signed timestamp is further than Tolerance
//     from Now, in the past or in the future.
//   - ErrSignatureMismatch: no signature matches any secret.
//   - ErrInvalidSecret, ErrUnknownHash, ErrInvalid: the Verifier itself is
//     misconfigured (no secret, a secret unusable for the scheme, an unknown
//     hash, encoding or scheme).
//
// Signatures are compared in constant time.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	s := v.Signing.withDefaults()
	if err := s.Validate(); err != nil {
		return err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	switch s.Scheme {
	case SchemeConvoySimple:
		if err := checkConvoySecrets(v.Secrets); err != nil {
			return err
		}
		sig, err := singleHeader(h, s.Header)
		if err != nil {
			return err
		}
		return VerifyConvoySimple(sig, body, s.Hash, s.Encoding, v.Secrets...)
	case SchemeConvoyAdvanced:
		if err := checkConvoySecrets(v.Secrets); err != nil {
			return err
		}
		sig, err := singleHeader(h, s.Header)
		if err != nil {
			return err
		}
		return VerifyConvoyAdvanced(sig, body, s.Hash, s.Encoding, v.Tolerance, now(), v.Secrets...)
	default: // SchemeStandardWebhooks; Validate refused the rest.
		return VerifyStandardWebhooks(h, body, v.Tolerance, now(), v.Secrets...)
	}
}

// VerifyRequest reads r's body, at most MaxBodyBytes of it, verifies it with
// Verify against r.Header and returns it. Call it before anything else reads
// r.Body: the signature covers the raw bytes as received. Whatever the
// outcome, r.Body is left readable from the start, so the handler can read
// the body again; closing it closes the original body. On error the
// returned body is nil and the error wraps ErrPayloadTooLarge for a body
// over the limit, the read error if reading failed, or is Verify's error.
func (v *Verifier) VerifyRequest(r *http.Request) ([]byte, error) {
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, invalid(ErrPayloadTooLarge, "request body", "over MaxBodyBytes")
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		orig := r.Body
		b, err := io.ReadAll(io.LimitReader(orig, limit+1))
		// Put back what was read in front of the rest, whatever happened.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), orig), orig}
		if err != nil {
			return nil, fmt.Errorf("convoy: read request body: %w", err)
		}
		if int64(len(b)) > limit {
			return nil, invalid(ErrPayloadTooLarge, "request body", "over MaxBodyBytes")
		}
		body = b
	}
	if err := v.Verify(r.Header, body); err != nil {
		return nil, err
	}
	if body == nil {
		body = []byte{}
	}
	return body, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// VerifyConvoySimple checks a Convoy simple signature: sigHeader is the
// value of the X-Convoy-Signature header (or the one the sender was
// configured with), the hex or base64 HMAC of body. hash empty means SHA256,
// enc empty means hex. It returns nil when the signature matches one of
// secrets, and otherwise an error wrapping ErrMissingSignature,
// ErrMalformedSignature, ErrSignatureMismatch, ErrUnknownHash, ErrInvalid
// (an unknown encoding) or ErrInvalidSecret (no or an empty secret). The
// comparison is in constant time. It is safe for concurrent use.
func VerifyConvoySimple(sigHeader string, body []byte, hash Hash, enc Encoding, secrets ...SecretValue) error {
	newHash, err := hashFunc(hash)
	if err != nil {
		return err
	}
	if err := checkEncoding(enc); err != nil {
		return err
	}
	if err := checkConvoySecrets(secrets); err != nil {
		return err
	}
	sigHeader = strings.TrimSpace(sigHeader)
	if sigHeader == "" {
		return ErrMissingSignature
	}
	if len(sigHeader) > maxSignatureHeaderLen {
		return malformed("signature header too long")
	}
	sig, err := decodeSignature(enc, sigHeader)
	if err != nil {
		return err
	}
	if len(sig) != newHash().Size() {
		return malformed("signature has the wrong length for the hash")
	}
	for _, secret := range secrets {
		if hmac.Equal(sig, convoyMAC(newHash, []byte(secret), "", body)) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// VerifyConvoyAdvanced checks a Convoy advanced signature: sigHeader is the
// value of the X-Convoy-Signature header, "t=<unix>,v1=<sig>[,v1=<sig>...]",
// each sig the hex or base64 HMAC of "<unix>,<body>". hash empty means
// SHA256, enc empty means hex. The timestamp must lie within tolerance of now
// in either direction; tolerance zero or negative means DefaultTolerance, a
// zero now means time.Now(). It returns nil when one v1 signature matches
// one of secrets, and otherwise an error wrapping ErrMissingSignature,
// ErrMalformedSignature, ErrTimestampExpired, ErrSignatureMismatch,
// ErrUnknownHash, ErrInvalid (an unknown encoding) or ErrInvalidSecret (no
// or an empty secret). The comparison is in constant time. It is safe for
// concurrent use.
func VerifyConvoyAdvanced(sigHeader string, body []byte, hash Hash, enc Encoding, tolerance time.Duration, now time.Time, secrets ...SecretValue) error {
	newHash, err := hashFunc(hash)
	if err != nil {
		return err
	}
	if err := checkConvoySecrets(secrets); err != nil {
		return err
	}
	parsed, err := ParseConvoyAdvancedHeader(sigHeader, enc)
	if err != nil {
		return err
	}
	size := newHash().Size()
	for _, sig := range parsed.Signatures {
		if len(sig) != size {
			return malformed("signature has the wrong length for the hash")
		}
	}
	if err := checkTimestamp(parsed.Timestamp, tolerance, now); err != nil {
		return err
	}
	ts := strconv.FormatInt(parsed.Timestamp, 10)
	for _, secret := range secrets {
		mac := convoyMAC(newHash, []byte(secret), ts, body)
		for _, sig := range parsed.Signatures {
			if hmac.Equal(sig, mac) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}

// VerifyStandardWebhooks checks a request signed by the Standard Webhooks
// scheme: h must carry webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64>" entries separated by spaces; other versions are skipped),
// each v1 signature the HMAC-SHA256 of "<id>.<timestamp>.<body>". Secrets
// are in the "whsec_<base64>" form (24 to 64 bytes). The timestamp must lie
// within tolerance of now in either direction; tolerance zero or negative
// means DefaultTolerance, a zero now means time.Now(). It returns nil when
// one v1 signature matches one of secrets, and otherwise an error wrapping
// ErrMissingSignature, ErrMalformedSignature, ErrTimestampExpired,
// ErrSignatureMismatch or ErrInvalidSecret. The comparison is in constant
// time. It is safe for concurrent use.
func VerifyStandardWebhooks(h http.Header, body []byte, tolerance time.Duration, now time.Time, secrets ...SecretValue) error {
	if len(secrets) == 0 {
		return invalid(ErrInvalidSecret, "secrets", "none given")
	}
	keys := make([][]byte, len(secrets))
	for i, secret := range secrets {
		key, err := standardWebhooksKey(i, secret)
		if err != nil {
			return err
		}
		keys[i] = key
	}
	id, err := singleHeader(h, headerWebhookID)
	if err != nil {
		return err
	}
	tsText, err := singleHeader(h, headerWebhookTimestamp)
	if err != nil {
		return err
	}
	sigText, err := singleHeader(h, headerWebhookSignature)
	if err != nil {
		return err
	}
	if id == "" || tsText == "" || sigText == "" {
		return ErrMissingSignature
	}
	ts, err := parseUnix(tsText)
	if err != nil {
		return err
	}
	sigs, err := ParseStandardWebhooksSignature(sigText)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, tolerance, now); err != nil {
		return err
	}
	ts2 := strconv.FormatInt(ts, 10)
	for _, key := range keys {
		mac := standardWebhooksMAC(key, id, ts2, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, mac) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}

// ConvoyAdvancedHeader is a parsed Convoy advanced signature header.
type ConvoyAdvancedHeader struct {
	// Timestamp is the signed time, in unix seconds.
	Timestamp int64
	// Signatures are the decoded v1 signatures, in header order: 1 to 32.
	Signatures [][]byte
}

// ParseConvoyAdvancedHeader parses "t=<unix>,v1=<sig>[,v1=<sig>...]", with
// sigs in enc (empty means hex). It needs exactly one t, in canonical
// decimal form, and at least one v1; entries with other keys are skipped.
// The value may be at most 8 KiB with at most 33 entries. An empty value is
// an error wrapping ErrMissingSignature, anything else it refuses wraps
// ErrMalformedSignature (or ErrInvalid for an unknown enc). It does not
// check the signatures' length against a hash; VerifyConvoyAdvanced does.
// It is safe for concurrent use.
func ParseConvoyAdvancedHeader(value string, enc Encoding) (ConvoyAdvancedHeader, error) {
	var out ConvoyAdvancedHeader
	if err := checkEncoding(enc); err != nil {
		return out, err
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return out, ErrMissingSignature
	}
	if len(value) > maxSignatureHeaderLen {
		return out, malformed("signature header too long")
	}
	if strings.Count(value, ",")+1 > maxSignatures+1 {
		return out, malformed("too many signature entries")
	}
	seenT := false
	for _, entry := range strings.Split(value, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || k == "" || v == "" {
			return ConvoyAdvancedHeader{}, malformed("entry is not key=value")
		}
		switch k {
		case "t":
			if seenT {
				return ConvoyAdvancedHeader{}, malformed("repeated timestamp")
			}
			ts, err := parseUnix(v)
			if err != nil {
				return ConvoyAdvancedHeader{}, err
			}
			out.Timestamp, seenT = ts, true
		case "v1":
			sig, err := decodeSignature(enc, v)
			if err != nil {
				return ConvoyAdvancedHeader{}, err
			}
			out.Signatures = append(out.Signatures, sig)
		}
	}
	if !seenT {
		return ConvoyAdvancedHeader{}, malformed("no timestamp")
	}
	if len(out.Signatures) == 0 {
		return ConvoyAdvancedHeader{}, malformed("no v1 signature")
	}
	return out, nil
}

// ParseStandardWebhooksSignature parses a webhook-signature header value:
// entries "<version>,<base64 signature>" separated by spaces. It returns
// the decoded v1 signatures (32 bytes each) in header order and skips other
// versions, but needs at least one v1. The value may be at most 8 KiB with
// at most 32 entries. An empty value is an error wrapping
// ErrMissingSignature, anything else it refuses wraps ErrMalformedSignature.
// It is safe for concurrent use.
func ParseStandardWebhooksSignature(value string) ([][]byte, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, ErrMissingSignature
	}
	if len(value) > maxSignatureHeaderLen {
		return nil, malformed("signature header too long")
	}
	entries := strings.Fields(value)
	if len(entries) > maxSignatures {
		return nil, malformed("too many signatures")
	}
	var sigs [][]byte
	for _, entry := range entries {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version == "" || sig == "" {
			return nil, malformed("entry is not version,signature")
		}
		if version != "v1" {
			continue
		}
		b, err := decodeSignature(Base64, sig)
		if err != nil {
			return nil, err
		}
		if len(b) != sha256.Size {
			return nil, malformed("v1 signature is not 32 bytes")
		}
		sigs = append(sigs, b)
	}
	if len(sigs) == 0 {
		return nil, malformed("no v1 signature")
	}
	return sigs, nil
}

// malformed returns an error wrapping ErrMalformedSignature. Messages never
// quote the header: it is attacker-controlled and may be huge.
func malformed(msg string) error {
	return &validationError{field: "signature", msg: msg, err: ErrMalformedSignature}
}

// singleHeader returns the one value of header name; "" when absent. A
// repeated header or an over-long value is malformed.
func singleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", malformed("header " + http.CanonicalHeaderKey(name) + " repeated")
	case len(vs[0]) > maxSignatureHeaderLen:
		return "", malformed("header " + http.CanonicalHeaderKey(name) + " too long")
	}
	return strings.TrimSpace(vs[0]), nil
}

// parseUnix parses canonical decimal unix seconds: digits only, no sign, no
// leading zero, at most maxUnixSeconds.
func parseUnix(s string) (int64, error) {
	if s == "" || len(s) > 12 || (s[0] == '0' && len(s) > 1) {
		return 0, malformed("timestamp is not unix seconds")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("timestamp is not unix seconds")
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ts > maxUnixSeconds {
		return 0, malformed("timestamp is not unix seconds")
	}
	return ts, nil
}

// checkTimestamp reports ErrTimestampExpired when ts lies further than
// tolerance from now.
func checkTimestamp(ts int64, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if now.IsZero() {
		now = time.Now()
	}
	d := now.Sub(time.Unix(ts, 0))
	if d > tolerance || d < -tolerance {
		return ErrTimestampExpired
	}
	return nil
}

func checkEncoding(enc Encoding) error {
	switch enc {
	case "", Hex, Base64:
		return nil
	}
	return invalid(ErrInvalid, "encoding", string(enc))
}

// checkConvoySecrets requires at least one secret, none empty.
func checkConvoySecrets(secrets []SecretValue) error {
	if len(secrets) == 0 {
		return invalid(ErrInvalidSecret, "secrets", "none given")
	}
	for i, s := range secrets {
		if _, err := convoyKey(i, s); err != nil {
			return err
		}
	}
	return nil
}

// decodeSignature decodes one signature in enc (empty means hex). Base64
// must be canonical padded standard encoding: the length check refuses the
// CR and LF that Go's decoder would skip.
func decodeSignature(enc Encoding, s string) ([]byte, error) {
	if enc == Base64 {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || base64.StdEncoding.EncodedLen(len(b)) != len(s) {
			return nil, malformed("signature is not base64")
		}
		return b, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, malformed("signature is not hex")
	}
	return b, nil
}
