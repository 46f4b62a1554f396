package compat

import (
	"net/http"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	svix "github.com/svix/svix-webhooks/go"
)

// verifier is what both reference libraries offer a receiver.
type verifier interface {
	Verify(payload []byte, headers http.Header) error
	VerifyIgnoringTimestamp(payload []byte, headers http.Header) error
	Sign(msgID string, timestamp time.Time, payload []byte) (string, error)
}

// Secrets in the whsec_ form: 32 bytes (0x00..0x1f), the specification's
// 24-byte example, and 64 bytes (0x00..0x3f).
const (
	secret32 convoy.SecretValue = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	secret24 convoy.SecretValue = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secret64 convoy.SecretValue = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
)

var libraries = []struct {
	name string
	new  func(secret string) (verifier, error)
}{
	{"standard-webhooks", func(s string) (verifier, error) { return standardwebhooks.NewWebhook(s) }},
	{"svix", func(s string) (verifier, error) { return svix.NewWebhook(s) }},
}

func sign(t *testing.T, secrets []convoy.SecretValue, id string, body []byte, at time.Time) http.Header {
	t.Helper()
	h, err := convoy.DefaultSigner().Sign(convoy.SignInput{
		Signing:   convoy.Signing{Scheme: convoy.SchemeStandardWebhooks},
		Secrets:   secrets,
		MessageID: id,
		Body:      body,
		Time:      at,
	})
	require.NoError(t, err)
	return h
}

var bodies = [][]byte{
	[]byte(`{"test": 2432232314}`),
	[]byte(`{"type":"invoice.paid","data":{"id":"in_1","amount":4200,"note":"caf\u00e9 \ud83d\ude00"}}`),
	{},
	[]byte("not json at all . 1614265330 . \x00\xff"),
}

// TestReferenceLibrariesVerifyConvoy signs with convoy's DefaultSigner and
// verifies with each reference library, with its own clock.
func TestReferenceLibrariesVerifyConvoy(t *testing.T) {
	t.Parallel()
	for _, lib := range libraries {
		for name, secret := range map[string]convoy.SecretValue{"24 bytes": secret24, "32 bytes": secret32, "64 bytes": secret64} {
			t.Run(lib.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				wh, err := lib.new(string(secret))
				require.NoError(t, err)
				for _, body := range bodies {
					// The libraries compare with time.Now within 5 minutes.
					h := sign(t, []convoy.SecretValue{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", body, time.Now())
					require.NoError(t, wh.Verify(body, h))

					tampered := append(append([]byte(nil), body...), ' ')
					require.Error(t, wh.Verify(tampered, h))
				}
			})
		}
	}
}

// TestReferenceLibrariesSignLikeConvoy compares signatures byte for byte at
// a fixed time, in both directions.
func TestReferenceLibrariesSignLikeConvoy(t *testing.T) {
	t.Parallel()
	at := time.Unix(1614265330, 0)
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			for _, secret := range []convoy.SecretValue{secret24, secret32, secret64} {
				wh, err := lib.new(string(secret))
				require.NoError(t, err)
				for _, body := range bodies {
					const id = "msg_2ZRmxYQ8dV1"
					h := sign(t, []convoy.SecretValue{secret}, id, body, at)
					want, err := wh.Sign(id, at, body)
					require.NoError(t, err)
					require.Equal(t, want, h.Get("webhook-signature"))
					require.NoError(t, wh.VerifyIgnoringTimestamp(body, h))

					// Headers built from the library's signature verify
					// with convoy.
					theirs := http.Header{}
					theirs.Set("webhook-id", id)
					theirs.Set("webhook-timestamp", "1614265330")
					theirs.Set("webhook-signature", want)
					require.NoError(t, convoy.VerifyStandardWebhooks(theirs, body, 0, at, secret))
					v := &convoy.Verifier{
						Signing: convoy.Signing{Scheme: convoy.SchemeStandardWebhooks},
						Secrets: []convoy.SecretValue{secret},
						Now:     func() time.Time { return at.Add(time.Minute) },
					}
					require.NoError(t, v.Verify(theirs, body))
				}
			}
		})
	}
}

// TestReferenceLibrariesDuringRotation signs with two live secrets: a
// receiver of either secret, using either library, accepts the request.
func TestReferenceLibrariesDuringRotation(t *testing.T) {
	t.Parallel()
	body := []byte(`{"rotating":true}`)
	h := sign(t, []convoy.SecretValue{secret64, secret32}, "msg_rot", body, time.Now())
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			for _, secret := range []convoy.SecretValue{secret64, secret32} {
				wh, err := lib.new(string(secret))
				require.NoError(t, err)
				require.NoError(t, wh.Verify(body, h))
			}
			wh, err := lib.new(string(secret24))
			require.NoError(t, err)
			require.Error(t, wh.Verify(body, h), "a secret that did not sign")
		})
	}
}
