package convoy

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Scheme names a signature scheme.
type Scheme string

// The signature schemes built in.
const (
	// SchemeConvoyAdvanced signs "<unix seconds>,<body>" and sends
	// "X-Convoy-Signature: t=<unix>,v1=<sig>[,v1=<sig>...]", one v1 per live
	// secret. It is the default.
	SchemeConvoyAdvanced Scheme = "convoy-advanced"
	// SchemeConvoySimple sends "X-Convoy-Signature: <sig>" where sig is the
	// HMAC of the body with the oldest live secret: during a rotation the
	// old secret keeps signing until it expires, then the new one takes
	// over.
	SchemeConvoySimple Scheme = "convoy-simple"
	// SchemeStandardWebhooks follows the Standard Webhooks specification
	// (webhook-id, webhook-timestamp, webhook-signature), as Svix does.
	SchemeStandardWebhooks Scheme = "standard-webhooks"
)

// Hash names one of the twelve HMAC hash functions of the Convoy schemes.
type Hash string

// The hash functions the Convoy schemes support.
const (
	MD5        Hash = "MD5"
	SHA1       Hash = "SHA1"
	SHA224     Hash = "SHA224"
	SHA256     Hash = "SHA256"
	SHA384     Hash = "SHA384"
	SHA512     Hash = "SHA512"
	SHA3_224   Hash = "SHA3_224"
	SHA3_256   Hash = "SHA3_256"
	SHA3_384   Hash = "SHA3_384"
	SHA3_512   Hash = "SHA3_512"
	SHA512_224 Hash = "SHA512_224"
	SHA512_256 Hash = "SHA512_256"
)

// Encoding names how a Convoy signature is written in its header.
type Encoding string

// Signature encodings.
const (
	Hex    Encoding = "hex"
	Base64 Encoding = "base64"
)

// DefaultSignatureHeader is the header the Convoy schemes write.
const DefaultSignatureHeader = "X-Convoy-Signature"

// Signing chooses how requests to an app or endpoint are signed. The zero
// value means the default: Convoy advanced, SHA256, hex, in
// X-Convoy-Signature. An endpoint's Signing, when set, overrides its app's.
type Signing struct {
	// Scheme is the signature scheme; empty means SchemeConvoyAdvanced.
	Scheme Scheme
	// Hash is the HMAC hash of the Convoy schemes; empty means SHA256.
	// Standard Webhooks always uses SHA256.
	Hash Hash
	// Encoding is hex or base64 for the Convoy schemes; empty means hex.
	Encoding Encoding
	// Header names the signature header of the Convoy schemes; empty means
	// X-Convoy-Signature. It must be an RFC 7230 token without _ (which
	// nginx and Apache drop by default), and neither a header convoy or
	// HTTP sets itself (IsReservedHeader) nor one that HTTP or
	// intermediaries read or rewrite (Cookie, Expect, Content-*, Via,
	// Forwarded, X-Forwarded-*): the request would go out unsigned, or
	// with the signature in another header's place.
	Header string
}

// SignInput is what a Signer signs.
type SignInput struct {
	// Signing is the effective choice of scheme for the endpoint, with
	// defaults filled in.
	Signing Signing
	// Secrets are the live secrets of the endpoint (or its app), newest
	// first. There is always at least one.
	Secrets []SecretValue
	// MessageID identifies the message across retries: the delivery ID. It
	// is the Standard Webhooks webhook-id.
	MessageID string
	// Body is the exact request body: the bytes signed are the bytes sent.
	Body []byte
	// Time is the time of this attempt.
	Time time.Time
}

// A Signer returns the headers that sign one request. Implementations must
// be safe for concurrent use and must not retain Body.
type Signer interface {
	Sign(in SignInput) (http.Header, error)
}

// SignerFunc adapts a function to the Signer interface.
type SignerFunc func(in SignInput) (http.Header, error)

// Sign calls f(in).
func (f SignerFunc) Sign(in SignInput) (http.Header, error) { return f(in) }

// Validate reports whether s names a known scheme, hash and encoding, and
// a signature header that can carry the signature (see Header). A bad
// header is a *HeaderError wrapping ErrInvalidHeader.
func (s Signing) Validate() error {
	switch s.Scheme {
	case "", SchemeConvoyAdvanced, SchemeConvoySimple, SchemeStandardWebhooks:
	default:
		return invalid(ErrUnknownScheme, "signing.Scheme", string(s.Scheme))
	}
	if s.Hash != "" {
		if _, err := ParseHash(string(s.Hash)); err != nil {
			return err
		}
	}
	switch s.Encoding {
	case "", Hex, Base64:
	default:
		return invalid(ErrInvalid, "signing.Encoding", string(s.Encoding))
	}
	if s.Header != "" {
		if reason := checkSignatureHeaderName(s.Header); reason != "" {
			return &HeaderError{Field: "signing.Header", Name: s.Header, Reason: reason}
		}
	}
	return nil
}

// ParseHash parses one of the twelve hash names (MD5, SHA1, SHA224, SHA256,
// SHA384, SHA512, SHA3_224, SHA3_256, SHA3_384, SHA3_512, SHA512_224,
// SHA512_256). An unknown name is an error wrapping ErrUnknownHash.
func ParseHash(name string) (Hash, error) {
	switch h := Hash(name); h {
	case MD5, SHA1, SHA224, SHA256, SHA384, SHA512, SHA3_224, SHA3_256,
		SHA3_384, SHA3_512, SHA512_224, SHA512_256:
		return h, nil
	}
	return "", invalid(ErrUnknownHash, "hash", name)
}

// Standard Webhooks header names. http.Header stores them in canonical form
// (Webhook-Id, ...); lookups are case-insensitive.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
)

// Limits shared by the signer and the header parsers, so that everything the
// signer writes can be verified.
const (
	// maxSignatures bounds the v1 signatures of one header, and so the live
	// secrets a request can be signed with (an app holds at most maxSecrets).
	maxSignatures = 32
	// maxSignatureHeaderLen bounds a signature header value parsed, and
	// every other header value a verifier reads.
	maxSignatureHeaderLen = 8192
	// maxUnixSeconds is 9999-12-31T23:59:59Z. Later timestamps are refused.
	maxUnixSeconds = 253402300799
)

// withDefaults returns s with its empty fields set to the defaults:
// Convoy advanced, SHA256, hex, X-Convoy-Signature.
func (s Signing) withDefaults() Signing {
	if s.Scheme == "" {
		s.Scheme = SchemeConvoyAdvanced
	}
	if s.Hash == "" {
		s.Hash = SHA256
	}
	if s.Encoding == "" {
		s.Encoding = Hex
	}
	if s.Header == "" {
		s.Header = DefaultSignatureHeader
	}
	return s
}

// hashFunc returns the constructor of h; empty means SHA256. An unknown name
// is an error wrapping ErrUnknownHash.
func hashFunc(h Hash) (func() hash.Hash, error) {
	switch h {
	case MD5:
		return md5.New, nil
	case SHA1:
		return sha1.New, nil
	case SHA224:
		return sha256.New224, nil
	case "", SHA256:
		return sha256.New, nil
	case SHA384:
		return sha512.New384, nil
	case SHA512:
		return sha512.New, nil
	case SHA3_224:
		return func() hash.Hash { return sha3.New224() }, nil
	case SHA3_256:
		return func() hash.Hash { return sha3.New256() }, nil
	case SHA3_384:
		return func() hash.Hash { return sha3.New384() }, nil
	case SHA3_512:
		return func() hash.Hash { return sha3.New512() }, nil
	case SHA512_224:
		return sha512.New512_224, nil
	case SHA512_256:
		return sha512.New512_256, nil
	}
	return nil, invalid(ErrUnknownHash, "hash", string(h))
}

// DefaultSigner returns the signer built into convoy. It implements the
// three schemes, chosen by in.Signing, whose empty fields mean the defaults
// (Convoy advanced, SHA256, hex, header X-Convoy-Signature):
//
//   - SchemeConvoySimple: "X-Convoy-Signature: <sig>", sig being the hex or
//     base64 HMAC of in.Body with the last of in.Secrets, the oldest live
//     secret (the header has room for one signature, and the old secret
//     is the one receivers are promised keeps working during a rotation).
//   - SchemeConvoyAdvanced: "X-Convoy-Signature: t=<unix>,v1=<sig>,...",
//     each sig the HMAC of "<unix>,<body>", one v1 per secret of in.Secrets,
//     in that order.
//   - SchemeStandardWebhooks: webhook-id (in.MessageID), webhook-timestamp
//     (unix seconds of in.Time) and "webhook-signature: v1,<sig> ...", each
//     sig the base64 HMAC-SHA256 of "<id>.<unix>.<body>", one per secret,
//     separated by spaces.
//
// The bytes signed are exactly in.Body. The Convoy schemes use each secret's
// text as the HMAC key; Standard Webhooks uses the base64-decoded part after
// "whsec_", which must be 24 to 64 bytes. Bad input (no secret, more than 32,
// an unusable secret, a zero time, an empty or unprintable MessageID for
// Standard Webhooks, an unknown hash) is an error wrapping ErrInvalid or a
// more specific sentinel (ErrInvalidSecret, ErrUnknownHash, ...); no error
// contains a secret.
//
// The returned Signer holds no state and is safe for concurrent use.
func DefaultSigner() Signer { return defaultSigner{} }

type defaultSigner struct{}

// Sign implements Signer.
func (defaultSigner) Sign(in SignInput) (http.Header, error) {
	s := in.Signing.withDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(in.Secrets) == 0 {
		return nil, invalid(ErrInvalidSecret, "SignInput.Secrets", "no live secret")
	}
	if len(in.Secrets) > maxSignatures {
		return nil, invalid(ErrInvalidSecret, "SignInput.Secrets",
			"more than "+strconv.Itoa(maxSignatures)+" live secrets")
	}
	h := make(http.Header, 3)
	switch s.Scheme {
	case SchemeConvoySimple:
		newHash, err := hashFunc(s.Hash)
		if err != nil {
			return nil, err
		}
		// One signature fits: the oldest live secret's, so that receivers
		// keep verifying with the old secret for the whole overlap.
		last := len(in.Secrets) - 1
		key, err := convoyKey(last, in.Secrets[last])
		if err != nil {
			return nil, err
		}
		var buf [maxEncodedMAC]byte
		h.Set(s.Header, string(appendSignature(buf[:0], s.Encoding, convoyMAC(newHash, key, "", in.Body))))
	case SchemeConvoyAdvanced:
		newHash, err := hashFunc(s.Hash)
		if err != nil {
			return nil, err
		}
		ts, err := unixText(in.Time)
		if err != nil {
			return nil, err
		}
		// "t=<ts>,v1=<sig>[,v1=<sig>…]", built in one allocation.
		var b strings.Builder
		b.Grow(len("t=") + len(ts) + len(in.Secrets)*(len(",v1=")+maxEncodedMAC))
		b.WriteString("t=")
		b.WriteString(ts)
		var buf [maxEncodedMAC]byte
		for i, secret := range in.Secrets {
			key, err := convoyKey(i, secret)
			if err != nil {
				return nil, err
			}
			b.WriteString(",v1=")
			b.Write(appendSignature(buf[:0], s.Encoding, convoyMAC(newHash, key, ts, in.Body)))
		}
		h.Set(s.Header, b.String())
	case SchemeStandardWebhooks:
		if in.MessageID == "" || len(in.MessageID) > maxHeaderValueLen || !validHeaderValue(in.MessageID) {
			return nil, invalid(ErrInvalidID, "SignInput.MessageID", "empty, too long or unprintable")
		}
		ts, err := unixText(in.Time)
		if err != nil {
			return nil, err
		}
		// "v1,<sig>[ v1,<sig>…]", built in one allocation.
		var b strings.Builder
		b.Grow(len(in.Secrets) * (len(" v1,") + base64.StdEncoding.EncodedLen(sha256.Size)))
		var buf [maxEncodedMAC]byte
		for i, secret := range in.Secrets {
			key, err := standardWebhooksKey(i, secret)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("v1,")
			b.Write(base64.StdEncoding.AppendEncode(buf[:0], standardWebhooksMAC(key, in.MessageID, ts, in.Body)))
		}
		h.Set(headerWebhookID, in.MessageID)
		h.Set(headerWebhookTimestamp, ts)
		h.Set(headerWebhookSignature, b.String())
	}
	return h, nil
}

// unixText returns t as decimal unix seconds, refusing times before 1970
// or after 9999 (a zero time among them).
func unixText(t time.Time) (string, error) {
	u := t.Unix()
	if u < 0 || u > maxUnixSeconds {
		return "", invalid(ErrInvalid, "SignInput.Time", "zero or out of range")
	}
	return strconv.FormatInt(u, 10), nil
}

// convoyKey returns the HMAC key of a Convoy scheme: the secret's text.
func convoyKey(i int, secret SecretValue) ([]byte, error) {
	if secret == "" {
		return nil, invalid(ErrInvalidSecret, secretField(i), "empty")
	}
	return []byte(secret), nil
}

// standardWebhooksKey decodes a "whsec_<base64>" secret to its 24 to 64
// bytes of key material.
func standardWebhooksKey(i int, secret SecretValue) ([]byte, error) {
	v, ok := strings.CutPrefix(string(secret), secretPrefix)
	if ok {
		key, err := base64.StdEncoding.DecodeString(v)
		if err == nil && len(key) >= minSecretBytes && len(key) <= maxSecretBytes {
			return key, nil
		}
	}
	return nil, invalid(ErrInvalidSecret, secretField(i),
		"Standard Webhooks needs whsec_ and base64 of 24 to 64 bytes")
}

func secretField(i int) string { return fmt.Sprintf("secrets[%d]", i) }

// convoyMAC returns the HMAC of body, or of "<ts>,<body>" when ts is not
// empty (Convoy advanced).
func convoyMAC(newHash func() hash.Hash, key []byte, ts string, body []byte) []byte {
	m := hmac.New(newHash, key)
	if ts != "" {
		m.Write([]byte(ts))
		m.Write([]byte{','})
	}
	m.Write(body)
	return m.Sum(nil)
}

// standardWebhooksMAC returns the HMAC-SHA256 of "<id>.<ts>.<body>".
func standardWebhooksMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(append(append(append(append(make([]byte, 0, len(id)+len(ts)+2), id...), '.'), ts...), '.'))
	m.Write(body)
	return m.Sum(nil)
}

// maxEncodedMAC is the longest encoded signature: a 64-byte digest
// (SHA512, SHA3-512) in hex.
const maxEncodedMAC = 2 * 64

// appendSignature appends sig to dst in the encoding.
func appendSignature(dst []byte, enc Encoding, sig []byte) []byte {
	if enc == Base64 {
		return base64.StdEncoding.AppendEncode(dst, sig)
	}
	return hex.AppendEncode(dst, sig)
}
