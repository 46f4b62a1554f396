package convoy

import (
	"net/http"
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
	// HMAC of the body with the newest live secret.
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
	// X-Convoy-Signature.
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

// Validate reports whether s names a known scheme, hash and encoding.
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
	if s.Header != "" && (!validHeaderName(s.Header) || len(s.Header) > maxHeaderNameLen) {
		return invalid(ErrInvalidHeader, "signing.Header", s.Header)
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
