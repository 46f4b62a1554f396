package convoy

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// SecretValue is the text of a signing secret. It never prints itself: fmt
// verbs, %#v, slog, encoding/json and String all render it as
// "[REDACTED]". Use string(v) where the raw text is really needed.
type SecretValue string

const redacted = "[REDACTED]"

// String returns a redacted placeholder, never the secret.
func (SecretValue) String() string { return redacted }

// GoString returns a redacted placeholder, never the secret.
func (SecretValue) GoString() string { return redacted }

// Format writes a redacted placeholder for every verb.
func (SecretValue) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON writes a redacted placeholder, so a secret nested in a value
// logged by slog's JSON handler or encoded by encoding/json stays hidden.
func (SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue makes slog record a redacted placeholder.
func (SecretValue) LogValue() slog.Value { return slog.StringValue(redacted) }

// Secret is one signing secret of an app or endpoint. During rotation an
// app holds several: each one whose ExpiresAt is zero or still ahead is live
// and signs every request, so receivers can switch at their own pace
// (Convoy simple, with room for one signature, signs with the oldest live
// one).
type Secret struct {
	// Value is the secret. Generated secrets use the Standard Webhooks form
	// "whsec_" + base64 of 32 random bytes, which every scheme accepts.
	Value SecretValue
	// CreatedAt is when the secret was added.
	CreatedAt time.Time
	// ExpiresAt, when not zero, is when the secret stops signing.
	ExpiresAt time.Time
}

// LiveAt reports whether the secret still signs at time t.
func (s Secret) LiveAt(t time.Time) bool {
	return s.ExpiresAt.IsZero() || t.Before(s.ExpiresAt)
}

// Secret lengths, in bytes of key material.
const (
	secretPrefix        = "whsec_"
	generatedSecretSize = 32
	minSecretBytes      = 24 // Standard Webhooks' lower bound
	maxSecretBytes      = 64 // Standard Webhooks' upper bound
	maxSecretText       = 256
)

// GenerateSecret returns a new secret in the Standard Webhooks form
// "whsec_<base64 of 32 bytes from crypto/rand>".
func GenerateSecret() (SecretValue, error) {
	b := make([]byte, generatedSecretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("convoy: generate secret: %w", err)
	}
	return SecretValue(secretPrefix + base64.StdEncoding.EncodeToString(b)), nil
}

// liveSecrets returns the values of the secrets live at t, newest first.
func liveSecrets(secrets []Secret, t time.Time) []SecretValue {
	out := make([]SecretValue, 0, len(secrets))
	for i := len(secrets) - 1; i >= 0; i-- {
		if secrets[i].LiveAt(t) {
			out = append(out, secrets[i].Value)
		}
	}
	return out
}

// validateSecrets checks each secret's text. Secrets in the whsec_ form must
// decode to 24..64 bytes; other secrets must be 16..256 bytes of text.
func validateSecrets(field string, secrets []Secret) error {
	for _, s := range secrets {
		v := string(s.Value)
		if strings.HasPrefix(v, secretPrefix) {
			raw, err := base64.StdEncoding.DecodeString(v[len(secretPrefix):])
			if err != nil {
				return invalid(ErrInvalidSecret, field, "whsec_ secret is not base64")
			}
			if len(raw) < minSecretBytes || len(raw) > maxSecretBytes {
				return invalid(ErrInvalidSecret, field, "whsec_ secret must hold 24 to 64 bytes")
			}
			continue
		}
		if len(v) < 16 || len(v) > maxSecretText {
			return invalid(ErrInvalidSecret, field, "secret must be 16 to 256 bytes")
		}
	}
	return nil
}

func cloneSecrets(s []Secret) []Secret {
	if s == nil {
		return nil
	}
	return append([]Secret(nil), s...)
}

// checkSchemeSecrets refuses secrets the scheme cannot sign with: Standard
// Webhooks keys are the base64 bytes of a "whsec_" secret, so every secret
// must be in that form. Refusing them here keeps a misconfigured app from
// failing every attempt (and killing its endpoints) later.
func checkSchemeSecrets(field string, scheme Scheme, secrets []Secret) error {
	if scheme != SchemeStandardWebhooks {
		return nil
	}
	for _, s := range secrets {
		if !strings.HasPrefix(string(s.Value), secretPrefix) {
			return invalid(ErrInvalidSecret, field, "Standard Webhooks needs whsec_ secrets")
		}
	}
	return nil
}
