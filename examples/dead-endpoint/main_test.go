package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// want is the whole output, with the receiver's port replaced by PORT.
const want = `endpoint http://127.0.0.1:PORT/webhooks is active; the receiver answers 500 to everything

sent invoice.created #1
endpoint status changed: active -> inactive (reason: retries-exhausted)
invoice.created #1: Failure after 3 attempts; the receiver got 3 requests

sending two more events while the endpoint is inactive
invoice.paid #2: Discarded, 0 attempts
invoice.refunded #3: Discarded, 0 attempts
requests that reached the receiver meanwhile: 0

the receiver recovered; re-activating the endpoint
endpoint status changed: inactive -> active (reason: manual)
ResendEndpoint re-sent 2 Discarded deliveries
Resend re-sent the delivery that ended in Failure
invoice.created  Success after 4 attempts in all
invoice.paid     Success after 1 attempt in all
invoice.refunded Success after 1 attempt in all

attempt history of invoice.created #1, newest first:
  attempt 4: HTTP 204, error: none
  attempt 3: HTTP 500, error: convoy: status 500
  attempt 2: HTTP 500, error: convoy: status 500
  attempt 1: HTTP 500, error: convoy: status 500
endpoint is active; the receiver got 6 requests in all
`

func TestDeadEndpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	t.Log(out.String())
	got := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out.String(), "127.0.0.1:PORT")
	require.Equal(t, want, got)
}
