package convoy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

var testBody = []byte(`{"event":"invoice.paid","amount":4200}`)

// signedRequest is one signed request and the Verifier that accepts it.
type signedRequest struct {
	header   http.Header
	body     []byte
	verifier *Verifier
	// sigHeader is the header carrying the signature of the scheme.
	sigHeader string
}

func signRequest(t *testing.T, s Signing) signedRequest {
	t.Helper()
	h := mustSign(t, SignInput{
		Signing: s, Secrets: []SecretValue{testSecretNew},
		MessageID: "msg_2ZRmx", Body: testBody, Time: testTime,
	})
	sigHeader := s.withDefaults().Header
	if s.Scheme == SchemeStandardWebhooks {
		sigHeader = "webhook-signature"
	}
	return signedRequest{
		header: h,
		body:   bytes.Clone(testBody),
		verifier: &Verifier{
			Signing: s, Secrets: []SecretValue{testSecretNew},
			Now: func() time.Time { return testTime },
		},
		sigHeader: sigHeader,
	}
}

// TestVerifyFailures tampers with a correctly signed request in one way at a
// time, for every scheme, and checks the typed error.
func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	schemes := []Signing{
		{Scheme: SchemeConvoySimple},
		{Scheme: SchemeConvoySimple, Hash: SHA512, Encoding: Base64},
		{Scheme: SchemeConvoyAdvanced},
		{Scheme: SchemeConvoyAdvanced, Hash: SHA3_256, Encoding: Base64},
		{Scheme: SchemeStandardWebhooks},
	}
	timed := func(s Signing) bool { return s.Scheme != SchemeConvoySimple }

	type mutation struct {
		name  string
		apply func(r *signedRequest)
		want  error // nil: still verifies
		only  func(Signing) bool
	}
	set := func(r *signedRequest, v string) { r.header.Set(r.sigHeader, v) }
	get := func(r *signedRequest) string { return r.header.Get(r.sigHeader) }
	at := func(d time.Duration) func(r *signedRequest) {
		return func(r *signedRequest) { r.verifier.Now = func() time.Time { return testTime.Add(d) } }
	}
	mutations := []mutation{
		{name: "untouched", apply: func(*signedRequest) {}},
		{name: "flipped body byte", apply: func(r *signedRequest) { r.body[3] ^= 0x01 }, want: ErrSignatureMismatch},
		{name: "appended body byte", apply: func(r *signedRequest) { r.body = append(r.body, ' ') }, want: ErrSignatureMismatch},
		{name: "empty body", apply: func(r *signedRequest) { r.body = nil }, want: ErrSignatureMismatch},
		{name: "wrong secret", apply: func(r *signedRequest) { r.verifier.Secrets = []SecretValue{testSecretOther} }, want: ErrSignatureMismatch},
		{name: "hash of another size", apply: func(r *signedRequest) { r.verifier.Signing.Hash = MD5 }, want: ErrMalformedSignature,
			only: func(s Signing) bool { return s.Scheme != SchemeStandardWebhooks }},
		{name: "flipped signature byte", apply: func(r *signedRequest) {
			v := []byte(get(r))
			i := len(v) - 5
			if v[i] == 'a' {
				v[i] = 'b'
			} else {
				v[i] = 'a'
			}
			set(r, string(v))
		}, want: ErrSignatureMismatch},
		{name: "truncated signature", apply: func(r *signedRequest) { v := get(r); set(r, v[:len(v)-4]) }, want: ErrMalformedSignature},
		{name: "truncated to half", apply: func(r *signedRequest) { v := get(r); set(r, v[:len(v)/2]) }, want: ErrMalformedSignature},
		{name: "garbled", apply: func(r *signedRequest) { set(r, "%%garbage;;==,,") }, want: ErrMalformedSignature},
		{name: "repeated header", apply: func(r *signedRequest) { r.header.Add(r.sigHeader, get(r)) }, want: ErrMalformedSignature},
		{name: "over-long header", apply: func(r *signedRequest) { set(r, strings.Repeat("a", maxSignatureHeaderLen+1)) }, want: ErrMalformedSignature},
		{name: "missing header", apply: func(r *signedRequest) { r.header.Del(r.sigHeader) }, want: ErrMissingSignature},
		{name: "empty header", apply: func(r *signedRequest) { set(r, " ") }, want: ErrMissingSignature},
		{name: "unknown hash", apply: func(r *signedRequest) { r.verifier.Signing.Hash = "SHA999" }, want: ErrUnknownHash},
		{name: "no secrets", apply: func(r *signedRequest) { r.verifier.Secrets = nil }, want: ErrInvalidSecret},
		{name: "empty secret", apply: func(r *signedRequest) { r.verifier.Secrets = []SecretValue{""} }, want: ErrInvalidSecret},
		{name: "second secret matches", apply: func(r *signedRequest) {
			r.verifier.Secrets = []SecretValue{testSecretOther, testSecretNew}
		}},
		{name: "at past edge of tolerance", apply: at(DefaultTolerance), only: timed},
		{name: "at future edge of tolerance", apply: at(-DefaultTolerance), only: timed},
		{name: "expired", apply: at(DefaultTolerance + time.Second), want: ErrTimestampExpired, only: timed},
		{name: "far future", apply: at(-DefaultTolerance - time.Second), want: ErrTimestampExpired, only: timed},
		{name: "a year old", apply: at(365 * 24 * time.Hour), want: ErrTimestampExpired, only: timed},
		{name: "within custom tolerance", apply: func(r *signedRequest) {
			r.verifier.Tolerance = time.Hour
			at(59 * time.Minute)(r)
		}, only: timed},
		{name: "outside custom tolerance", apply: func(r *signedRequest) {
			r.verifier.Tolerance = 10 * time.Second
			at(11 * time.Second)(r)
		}, want: ErrTimestampExpired, only: timed},
		{name: "simple ignores time", apply: at(1000 * time.Hour), only: func(s Signing) bool { return !timed(s) }},
	}

	for _, s := range schemes {
		for _, m := range mutations {
			if m.only != nil && !m.only(s) {
				continue
			}
			t.Run(string(s.Scheme)+"/"+string(s.Hash)+"/"+string(s.Encoding)+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				r := signRequest(t, s)
				require.NoError(t, r.verifier.Verify(r.header, r.body), "before tampering")
				m.apply(&r)
				err := r.verifier.Verify(r.header, r.body)
				if m.want == nil {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, m.want)
			})
		}
	}
}

func TestVerifyConvoyAdvancedHeaders(t *testing.T) {
	t.Parallel()
	mac := func(ts string, secret SecretValue) string {
		newHash, err := hashFunc(SHA256)
		require.NoError(t, err)
		return hex.EncodeToString(convoyMAC(newHash, []byte(secret), ts, testBody))
	}
	good := mac("1700000000", testSecretNew)
	other := mac("1700000000", testSecretOther)
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"canonical", "t=1700000000,v1=" + good, nil},
		{"spaces after commas", "t=1700000000, v1=" + other + ", v1=" + good, nil},
		{"signature before timestamp", "v1=" + good + ",t=1700000000", nil},
		{"unknown keys skipped", "t=1700000000,v0=zzz,v1=" + good + ",x=1", nil},
		{"uppercase hex", "t=1700000000,v1=" + strings.ToUpper(good), nil},
		{"only other secret", "t=1700000000,v1=" + other, ErrSignatureMismatch},
		{"timestamp differs from signed", "t=1700000001,v1=" + good, ErrSignatureMismatch},
		{"no timestamp", "v1=" + good, ErrMalformedSignature},
		{"no signature", "t=1700000000", ErrMalformedSignature},
		{"empty signature", "t=1700000000,v1=", ErrMalformedSignature},
		{"empty entry", "t=1700000000,,v1=" + good, ErrMalformedSignature},
		{"trailing comma", "t=1700000000,v1=" + good + ",", ErrMalformedSignature},
		{"no equals", "t=1700000000,v1" + good, ErrMalformedSignature},
		{"two timestamps", "t=1700000000,t=1700000000,v1=" + good, ErrMalformedSignature},
		{"signed timestamp", "t=+1700000000,v1=" + good, ErrMalformedSignature},
		{"negative timestamp", "t=-1700000000,v1=" + good, ErrMalformedSignature},
		{"leading zero", "t=01700000000,v1=" + good, ErrMalformedSignature},
		{"fractional timestamp", "t=1700000000.5,v1=" + good, ErrMalformedSignature},
		{"RFC 3339 timestamp", "t=2023-11-14T22:13:20Z,v1=" + good, ErrMalformedSignature},
		{"huge timestamp", "t=99999999999999999999,v1=" + good, ErrMalformedSignature},
		{"year 10000", "t=253402300800,v1=" + good, ErrMalformedSignature},
		{"odd hex", "t=1700000000,v1=" + good[1:], ErrMalformedSignature},
		{"short signature", "t=1700000000,v1=" + good[:62], ErrMalformedSignature},
		{"too many entries", "t=1700000000" + strings.Repeat(",v1="+other, maxSignatures) + ",v1=" + good, ErrMalformedSignature},
		{"as many entries as allowed", "t=1700000000" + strings.Repeat(",v1="+other, maxSignatures-1) + ",v1=" + good, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyConvoyAdvanced(tt.header, testBody, "", "", 0, testTime, testSecretNew)
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestVerifyStandardWebhooksHeaders(t *testing.T) {
	t.Parallel()
	key, err := standardWebhooksKey(0, testSecretNew)
	require.NoError(t, err)
	otherKey, err := standardWebhooksKey(0, testSecretOther)
	require.NoError(t, err)
	good := "v1," + base64.StdEncoding.EncodeToString(standardWebhooksMAC(key, "msg_1", "1700000000", testBody))
	other := "v1," + base64.StdEncoding.EncodeToString(standardWebhooksMAC(otherKey, "msg_1", "1700000000", testBody))

	tests := []struct {
		name    string
		id, ts  string
		sig     string
		secrets []SecretValue
		want    error
	}{
		{name: "valid", id: "msg_1", ts: "1700000000", sig: good},
		{name: "rotation, match second", id: "msg_1", ts: "1700000000", sig: other + " " + good},
		{name: "rotation, match first", id: "msg_1", ts: "1700000000", sig: good + " " + other},
		{name: "extra spaces", id: "msg_1", ts: "1700000000", sig: "  " + other + "   " + good + " "},
		{name: "asymmetric entries skipped", id: "msg_1", ts: "1700000000", sig: "v1a,c29tZXRoaW5n " + good},
		{name: "receiver holds two secrets", id: "msg_1", ts: "1700000000", sig: good, secrets: []SecretValue{testSecretOther, testSecretNew}},
		{name: "other id", id: "msg_2", ts: "1700000000", sig: good, want: ErrSignatureMismatch},
		{name: "other secret", id: "msg_1", ts: "1700000000", sig: other, want: ErrSignatureMismatch},
		{name: "timestamp differs from signed", id: "msg_1", ts: "1700000001", sig: good, want: ErrSignatureMismatch},
		{name: "expired", id: "msg_1", ts: "1699999699", sig: good, want: ErrTimestampExpired},
		{name: "far future", id: "msg_1", ts: "1700000301", sig: good, want: ErrTimestampExpired},
		{name: "truncated timestamp", id: "msg_1", ts: "17000", sig: good, want: ErrTimestampExpired},
		{name: "missing id", ts: "1700000000", sig: good, want: ErrMissingSignature},
		{name: "missing timestamp", id: "msg_1", sig: good, want: ErrMissingSignature},
		{name: "missing signature", id: "msg_1", ts: "1700000000", want: ErrMissingSignature},
		{name: "garbled timestamp", id: "msg_1", ts: "17000000x0", sig: good, want: ErrMalformedSignature},
		{name: "milliseconds timestamp", id: "msg_1", ts: "1700000000000", sig: good, want: ErrMalformedSignature},
		{name: "version only", id: "msg_1", ts: "1700000000", sig: "v1", want: ErrMalformedSignature},
		{name: "no version", id: "msg_1", ts: "1700000000", sig: "," + good[3:], want: ErrMalformedSignature},
		{name: "bare signature", id: "msg_1", ts: "1700000000", sig: good[3:], want: ErrMalformedSignature},
		{name: "truncated signature", id: "msg_1", ts: "1700000000", sig: good[:len(good)-4], want: ErrMalformedSignature},
		{name: "unpadded signature", id: "msg_1", ts: "1700000000", sig: strings.TrimRight(good, "="), want: ErrMalformedSignature},
		{name: "url-safe base64", id: "msg_1", ts: "1700000000", sig: "v1,_-" + good[5:], want: ErrMalformedSignature},
		{name: "only v1a", id: "msg_1", ts: "1700000000", sig: "v1a,c29tZXRoaW5n", want: ErrMalformedSignature},
		{name: "too many signatures", id: "msg_1", ts: "1700000000", sig: strings.Repeat(other+" ", maxSignatures) + good, want: ErrMalformedSignature},
		{name: "as many signatures as allowed", id: "msg_1", ts: "1700000000", sig: strings.Repeat(other+" ", maxSignatures-1) + good},
		{name: "plain secret", id: "msg_1", ts: "1700000000", sig: good, secrets: []SecretValue{"plain-text-secret-0123456789"}, want: ErrInvalidSecret},
		{name: "no secret", id: "msg_1", ts: "1700000000", sig: good, secrets: []SecretValue{}, want: ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range map[string]string{"webhook-id": tt.id, "webhook-timestamp": tt.ts, "webhook-signature": tt.sig} {
				if v != "" {
					h.Set(k, v)
				}
			}
			secrets := tt.secrets
			if secrets == nil {
				secrets = []SecretValue{testSecretNew}
			}
			err := VerifyStandardWebhooks(h, testBody, 0, testTime, secrets...)
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestVerifyConvoySimpleArguments(t *testing.T) {
	t.Parallel()
	sig := mustSign(t, SignInput{Signing: Signing{Scheme: SchemeConvoySimple}, Secrets: []SecretValue{testSecretNew}, Body: testBody}).
		Get(DefaultSignatureHeader)
	require.NoError(t, VerifyConvoySimple(sig, testBody, "", "", testSecretNew))
	require.NoError(t, VerifyConvoySimple(" "+sig+" ", testBody, SHA256, Hex, testSecretNew))
	require.ErrorIs(t, VerifyConvoySimple(sig, testBody, "sha256", Hex, testSecretNew), ErrUnknownHash)
	require.ErrorIs(t, VerifyConvoySimple(sig, testBody, SHA256, "base32", testSecretNew), ErrInvalid)
	require.ErrorIs(t, VerifyConvoySimple(sig, testBody, SHA256, Base64, testSecretNew), ErrMalformedSignature)
	require.ErrorIs(t, VerifyConvoySimple(sig, testBody, SHA256, Hex), ErrInvalidSecret)
	require.ErrorIs(t, VerifyConvoySimple("", testBody, SHA256, Hex, testSecretNew), ErrMissingSignature)

	b64 := mustSign(t, SignInput{Signing: Signing{Scheme: SchemeConvoySimple, Encoding: Base64}, Secrets: []SecretValue{testSecretNew}, Body: testBody}).
		Get(DefaultSignatureHeader)
	require.NoError(t, VerifyConvoySimple(b64, testBody, SHA256, Base64, testSecretNew))
	// Go's base64 decoder skips CR and LF; the verifier refuses them.
	require.ErrorIs(t, VerifyConvoySimple(b64[:8]+"\n"+b64[8:], testBody, SHA256, Base64, testSecretNew), ErrMalformedSignature)
	require.ErrorIs(t, VerifyConvoySimple(strings.TrimRight(b64, "="), testBody, SHA256, Base64, testSecretNew), ErrMalformedSignature)
}

func TestVerifierMisconfigured(t *testing.T) {
	t.Parallel()
	r := signRequest(t, Signing{})
	tests := []struct {
		name string
		v    Verifier
		want error
	}{
		{"unknown scheme", Verifier{Signing: Signing{Scheme: "stripe"}, Secrets: []SecretValue{testSecretNew}}, ErrUnknownScheme},
		{"unknown encoding", Verifier{Signing: Signing{Encoding: "base32"}, Secrets: []SecretValue{testSecretNew}}, ErrInvalid},
		{"bad header name", Verifier{Signing: Signing{Header: "X:Sig"}, Secrets: []SecretValue{testSecretNew}}, ErrInvalidHeader},
		{"no secrets, header missing", Verifier{}, ErrInvalidSecret},
		{"sw secret not whsec_", Verifier{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{"plain-text-secret-0123456789"}}, ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Misconfiguration is reported whatever the request.
			require.ErrorIs(t, tt.v.Verify(http.Header{}, nil), tt.want)
			require.ErrorIs(t, tt.v.Verify(r.header, r.body), tt.want)
		})
	}
}

func TestVerifierDefaultClock(t *testing.T) {
	t.Parallel()
	// With Now nil the Verifier uses time.Now: a request signed a day ago
	// is expired, and one signed now verifies.
	for _, s := range []Signing{{}, {Scheme: SchemeStandardWebhooks}} {
		v := &Verifier{Signing: s, Secrets: []SecretValue{testSecretNew}}
		old := mustSign(t, SignInput{Signing: s, Secrets: v.Secrets, MessageID: "m", Body: testBody, Time: time.Now().Add(-24 * time.Hour)})
		require.ErrorIs(t, v.Verify(old, testBody), ErrTimestampExpired)
		fresh := mustSign(t, SignInput{Signing: s, Secrets: v.Secrets, MessageID: "m", Body: testBody, Time: time.Now()})
		require.NoError(t, v.Verify(fresh, testBody))
	}
	// A zero now in the package functions means time.Now() too.
	h := mustSign(t, SignInput{Secrets: []SecretValue{testSecretNew}, Body: testBody, Time: time.Now()})
	require.NoError(t, VerifyConvoyAdvanced(h.Get(DefaultSignatureHeader), testBody, "", "", 0, time.Time{}, testSecretNew))
}

func TestVerifyRequest(t *testing.T) {
	t.Parallel()
	newRequest := func(t *testing.T, body io.Reader, h http.Header) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks", body)
		for k, vs := range h {
			r.Header[k] = vs
		}
		return r
	}

	t.Run("verifies and restores the body", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{})
		r := newRequest(t, bytes.NewReader(sr.body), sr.header)
		body, err := sr.verifier.VerifyRequest(r)
		require.NoError(t, err)
		require.Equal(t, testBody, body)
		again, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.Equal(t, testBody, again)
		require.NoError(t, r.Body.Close())
	})

	t.Run("bad signature leaves the body readable", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{Scheme: SchemeStandardWebhooks})
		tampered := append(bytes.Clone(testBody), '\n')
		r := newRequest(t, bytes.NewReader(tampered), sr.header)
		body, err := sr.verifier.VerifyRequest(r)
		require.ErrorIs(t, err, ErrSignatureMismatch)
		require.Nil(t, body)
		again, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.Equal(t, tampered, again)
	})

	t.Run("body at the limit", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{})
		sr.verifier.MaxBodyBytes = int64(len(testBody))
		body, err := sr.verifier.VerifyRequest(newRequest(t, bytes.NewReader(testBody), sr.header))
		require.NoError(t, err)
		require.Equal(t, testBody, body)
	})

	t.Run("body over the limit, length unknown", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{})
		sr.verifier.MaxBodyBytes = int64(len(testBody)) - 1
		r := newRequest(t, nil, sr.header)
		r.Body = io.NopCloser(iotest.HalfReader(bytes.NewReader(testBody)))
		r.ContentLength = -1
		body, err := sr.verifier.VerifyRequest(r)
		require.ErrorIs(t, err, ErrPayloadTooLarge)
		require.Nil(t, body)
		again, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.Equal(t, testBody, again, "the whole body is still there")
	})

	t.Run("body over the limit, announced", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{})
		r := newRequest(t, bytes.NewReader(make([]byte, DefaultMaxBodyBytes+1)), sr.header)
		require.Equal(t, int64(DefaultMaxBodyBytes+1), r.ContentLength)
		_, err := sr.verifier.VerifyRequest(r)
		require.ErrorIs(t, err, ErrPayloadTooLarge)
		n, err := io.Copy(io.Discard, r.Body)
		require.NoError(t, err)
		require.Equal(t, int64(DefaultMaxBodyBytes+1), n, "the body was not read")
	})

	t.Run("read error", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{})
		boom := errors.New("connection reset")
		r := newRequest(t, nil, sr.header)
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader("{"), iotest.ErrReader(boom)))
		_, err := sr.verifier.VerifyRequest(r)
		require.ErrorIs(t, err, boom)
	})

	t.Run("no body", func(t *testing.T) {
		t.Parallel()
		h := mustSign(t, SignInput{Secrets: []SecretValue{testSecretNew}, Time: testTime})
		v := &Verifier{Secrets: []SecretValue{testSecretNew}, Now: func() time.Time { return testTime }}
		body, err := v.VerifyRequest(newRequest(t, nil, h))
		require.NoError(t, err)
		require.Empty(t, body)
		r := newRequest(t, nil, h)
		r.Body = nil
		_, err = v.VerifyRequest(r)
		require.NoError(t, err)
	})

	t.Run("in a handler behind a server", func(t *testing.T) {
		t.Parallel()
		sr := signRequest(t, Signing{Scheme: SchemeConvoyAdvanced, Hash: SHA512})
		type seen struct {
			verifyErr error
			body      []byte
		}
		got := make(chan seen, 1)
		v := &Verifier{Signing: Signing{Hash: SHA512}, Secrets: []SecretValue{testSecretNew}, Now: sr.verifier.Now}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := v.VerifyRequest(r)
			b, _ := io.ReadAll(r.Body)
			got <- seen{err, b}
			if err != nil {
				http.Error(w, "bad signature", http.StatusUnauthorized)
			}
		}))
		defer srv.Close()
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(testBody))
		require.NoError(t, err)
		for k, vs := range sr.header {
			req.Header[k] = vs
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		s := <-got
		require.NoError(t, s.verifyErr)
		require.Equal(t, testBody, s.body)
	})
}

// verifyErrors are the errors a verification of a request may return when
// the Verifier itself is well configured.
var verifyErrors = []error{ErrMissingSignature, ErrMalformedSignature, ErrTimestampExpired, ErrSignatureMismatch}

func requireVerifyError(t *testing.T, err error) {
	t.Helper()
	for _, want := range verifyErrors {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the verification sentinels", err)
}

func FuzzParseConvoyAdvancedHeader(f *testing.F) {
	f.Add("t=1700000000,v1=0011aabb", false)
	f.Add("t=1700000000,v1=ABEi,v1=M0RV", true)
	f.Add("t=1,v1=00, v1=ff ,x=y", false)
	f.Add("v1=00,t=1700000000,t=1", false)
	f.Add("t=01,v1=", false)
	f.Add(",,,=", true)
	f.Fuzz(func(t *testing.T, value string, b64 bool) {
		enc := Hex
		if b64 {
			enc = Base64
		}
		got, err := ParseConvoyAdvancedHeader(value, enc)
		if err != nil {
			require.Zero(t, got)
			requireVerifyError(t, err)
			return
		}
		require.LessOrEqual(t, len(value), maxSignatureHeaderLen)
		require.NotEmpty(t, got.Signatures)
		require.LessOrEqual(t, len(got.Signatures), maxSignatures)
		require.GreaterOrEqual(t, got.Timestamp, int64(0))
		require.LessOrEqual(t, got.Timestamp, int64(maxUnixSeconds))

		// Written back in canonical form, it parses to the same.
		var b strings.Builder
		b.WriteString("t=" + strconv.FormatInt(got.Timestamp, 10))
		for _, sig := range got.Signatures {
			text := hex.EncodeToString(sig)
			if enc == Base64 {
				text = base64.StdEncoding.EncodeToString(sig)
			}
			b.WriteString(",v1=" + text)
		}
		again, err := ParseConvoyAdvancedHeader(b.String(), enc)
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

func FuzzParseStandardWebhooksSignature(f *testing.F) {
	f.Add(specSignature)
	f.Add(specSignature + " v1a,c29tZXRoaW5n  " + specSignature)
	f.Add("v1,")
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE")
	f.Add(" , ,v1")
	f.Fuzz(func(t *testing.T, value string) {
		got, err := ParseStandardWebhooksSignature(value)
		if err != nil {
			require.Nil(t, got)
			requireVerifyError(t, err)
			return
		}
		require.NotEmpty(t, got)
		require.LessOrEqual(t, len(got), maxSignatures)
		parts := make([]string, len(got))
		for i, sig := range got {
			require.Len(t, sig, 32)
			parts[i] = "v1," + base64.StdEncoding.EncodeToString(sig)
		}
		again, err := ParseStandardWebhooksSignature(strings.Join(parts, " "))
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

// FuzzVerifyConvoyAdvanced mutates a signed header and body: verification
// never panics, always returns one of the typed errors, and succeeds only
// for the body and timestamp that were signed.
func FuzzVerifyConvoyAdvanced(f *testing.F) {
	signed := mustSignFuzz(f, SignInput{Secrets: []SecretValue{testSecretNew, testSecretOld}, Body: testBody, Time: testTime})
	f.Add(signed.Get(DefaultSignatureHeader), testBody, int64(0))
	f.Add(signed.Get(DefaultSignatureHeader), testBody[1:], int64(0))
	f.Add(signed.Get(DefaultSignatureHeader), testBody, int64(301))
	f.Add("t=1700000000,v1=00", []byte{}, int64(-301))
	f.Fuzz(func(t *testing.T, header string, body []byte, skew int64) {
		skew %= 1_000_000 // seconds; keeps now and -skew in range
		now := testTime.Add(time.Duration(skew) * time.Second)
		err := VerifyConvoyAdvanced(header, body, SHA256, Hex, 0, now, testSecretNew)
		if err != nil {
			requireVerifyError(t, err)
			return
		}
		require.Equal(t, testBody, body)
		parsed, perr := ParseConvoyAdvancedHeader(header, Hex)
		require.NoError(t, perr)
		require.Equal(t, testTime.Unix(), parsed.Timestamp)
		require.LessOrEqual(t, max(skew, -skew), int64(DefaultTolerance/time.Second))
	})
}

// FuzzVerifyStandardWebhooks mutates the three headers and the body of a
// signed request, as FuzzVerifyConvoyAdvanced does.
func FuzzVerifyStandardWebhooks(f *testing.F) {
	signed := mustSignFuzz(f, SignInput{
		Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{testSecretNew, testSecretOld},
		MessageID: "msg_fuzz", Body: testBody, Time: testTime,
	})
	id, ts, sig := signed.Get("webhook-id"), signed.Get("webhook-timestamp"), signed.Get("webhook-signature")
	f.Add(id, ts, sig, testBody)
	f.Add(id+"x", ts, sig, testBody)
	f.Add(id, ts+"0", sig, testBody)
	f.Add(id, ts, sig[:20], testBody)
	f.Add("", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := VerifyStandardWebhooks(h, body, 0, testTime, testSecretNew)
		if err != nil {
			requireVerifyError(t, err)
			return
		}
		require.Equal(t, "msg_fuzz", strings.TrimSpace(id))
		require.Equal(t, "1700000000", strings.TrimSpace(ts))
		require.Equal(t, testBody, body)
	})
}

func mustSignFuzz(f *testing.F, in SignInput) http.Header {
	f.Helper()
	h, err := DefaultSigner().Sign(in)
	require.NoError(f, err)
	return h
}
