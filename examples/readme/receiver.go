package main

import (
	"net/http"

	"github.com/convoykit/convoy"
)

// webhookHandler is the receiving side, as shown in the README.
func webhookHandler(secret string) http.Handler {
	v := &convoy.Verifier{Secrets: []convoy.SecretValue{convoy.SecretValue(secret)}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := v.VerifyRequest(r) // raw body, constant-time, ±5 min
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		handle(r.Header.Get("X-Convoy-Delivery-ID"), body) // dedupe on this ID
		w.WriteHeader(http.StatusNoContent)
	})
}

func handle(deliveryID string, body []byte) {}

var _ = webhookHandler
