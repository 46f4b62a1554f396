package convoy_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// The secret the receiver shares with the sender, and the time the
// examples' requests are signed at: fixed, so the output is too.
const exampleSecret convoy.SecretValue = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var exampleTime = time.Unix(1700000000, 0)

// sign returns the headers convoy would send with body.
func sign(s convoy.Signing, body string) http.Header {
	h, err := convoy.DefaultSigner().Sign(convoy.SignInput{
		Signing:   s,
		Secrets:   []convoy.SecretValue{exampleSecret},
		MessageID: "msg_2b3xKFQ4PzYJm9Q8",
		Body:      []byte(body),
		Time:      exampleTime,
	})
	if err != nil {
		panic(err)
	}
	return h
}

func ExampleDefaultSigner() {
	h, err := convoy.DefaultSigner().Sign(convoy.SignInput{
		// The zero Signing is Convoy advanced with HMAC-SHA256 in hex.
		Secrets: []convoy.SecretValue{exampleSecret},
		Body:    []byte(`{"type":"invoice.paid"}`),
		Time:    exampleTime,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Get("X-Convoy-Signature"))
	// Output:
	// t=1700000000,v1=073a866005eeb3c99b3d86c3858d8273195fb00d1369e619b327791c74e63804
}

func ExampleVerifyConvoySimple() {
	body := `{"type":"invoice.paid"}`
	sig := sign(convoy.Signing{Scheme: convoy.SchemeConvoySimple, Hash: convoy.SHA512}, body).
		Get("X-Convoy-Signature")

	err := convoy.VerifyConvoySimple(sig, []byte(body), convoy.SHA512, convoy.Hex, exampleSecret)
	fmt.Println("genuine:", err)

	err = convoy.VerifyConvoySimple(sig, []byte(`{"type":"invoice.paid "}`), convoy.SHA512, convoy.Hex, exampleSecret)
	fmt.Println("tampered:", errors.Is(err, convoy.ErrSignatureMismatch))
	// Output:
	// genuine: <nil>
	// tampered: true
}

func ExampleVerifyConvoyAdvanced() {
	body := `{"type":"invoice.paid"}`
	sig := sign(convoy.Signing{}, body).Get("X-Convoy-Signature")

	// A receiver passes time.Now(); the example fixes the clock.
	now := exampleTime.Add(30 * time.Second)
	err := convoy.VerifyConvoyAdvanced(sig, []byte(body), convoy.SHA256, convoy.Hex, 5*time.Minute, now, exampleSecret)
	fmt.Println("fresh:", err)

	// The same request replayed an hour later.
	err = convoy.VerifyConvoyAdvanced(sig, []byte(body), convoy.SHA256, convoy.Hex, 5*time.Minute, now.Add(time.Hour), exampleSecret)
	fmt.Println("replayed:", errors.Is(err, convoy.ErrTimestampExpired))
	// Output:
	// fresh: <nil>
	// replayed: true
}

// The example of the Standard Webhooks specification.
func ExampleVerifyStandardWebhooks() {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	now := time.Unix(1614265330, 0)

	fmt.Println(convoy.VerifyStandardWebhooks(h, body, 0, now, exampleSecret))

	// During a rotation the sender signs with each live secret, and the
	// receiver may hold the new and the old one.
	newSecret := convoy.SecretValue("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	fmt.Println(convoy.VerifyStandardWebhooks(h, body, 0, now, newSecret, exampleSecret))
	// Output:
	// <nil>
	// <nil>
}

func ExampleVerifier_Verify() {
	v := &convoy.Verifier{
		Signing: convoy.Signing{Scheme: convoy.SchemeStandardWebhooks},
		Secrets: []convoy.SecretValue{exampleSecret},
		Now:     func() time.Time { return exampleTime }, // nil in production: time.Now
	}
	body := `{"type":"invoice.paid"}`
	h := sign(v.Signing, body)
	fmt.Println(h.Get("webhook-signature"))
	fmt.Println("genuine:", v.Verify(h, []byte(body)))

	h.Del("webhook-signature")
	fmt.Println("unsigned:", errors.Is(v.Verify(h, []byte(body)), convoy.ErrMissingSignature))
	// Output:
	// v1,OAo5ifW/Pdm1eOqDeFKY7S+W4M4k86ohVKcq6QsVIRE=
	// genuine: <nil>
	// unsigned: true
}

// A receiver's http.Handler: VerifyRequest reads the raw body (up to 1 MiB
// by default), checks it and leaves r.Body readable again.
func ExampleVerifier_VerifyRequest() {
	v := &convoy.Verifier{
		Secrets: []convoy.SecretValue{exampleSecret},
		Now:     func() time.Time { return exampleTime }, // nil in production: time.Now
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.VerifyRequest(r); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body) // or use the body VerifyRequest returned
		fmt.Fprintf(w, "accepted %s", body)
	})

	body := `{"type":"invoice.paid"}`
	for _, sent := range []string{body, `{"type":"invoice.paid","amount":1}`} {
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(sent))
		for k, vs := range sign(convoy.Signing{}, body) {
			r.Header[k] = vs
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200 accepted {"type":"invoice.paid"}
	// 401 invalid signature
}

func ExampleParseConvoyAdvancedHeader() {
	hdr, err := convoy.ParseConvoyAdvancedHeader("t=1700000000,v1=00ff,v1=abcd", convoy.Hex)
	fmt.Println(hdr.Timestamp, hdr.Signatures, err)

	_, err = convoy.ParseConvoyAdvancedHeader("t=1700000000,v1=", convoy.Hex)
	fmt.Println(errors.Is(err, convoy.ErrMalformedSignature))
	// Output:
	// 1700000000 [[0 255] [171 205]] <nil>
	// true
}

func ExampleParseStandardWebhooksSignature() {
	sigs, err := convoy.ParseStandardWebhooksSignature(
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,c2lnbmVk")
	fmt.Println(len(sigs), len(sigs[0]), err)
	// Output:
	// 1 32 <nil>
}
