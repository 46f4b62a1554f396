package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	text := out.String()
	t.Log(text)
	require.Equal(t, 3, strings.Count(text, ": Success after 1 attempt(s)"))
	require.Equal(t, 3, strings.Count(text, "attempt 1: HTTP 204"))
	require.Equal(t, 3, strings.Count(text, "receiver verified X-Convoy-Signature: t="))
	for _, typ := range []string{"invoice.created", "invoice.paid", "customer.updated"} {
		require.Contains(t, text, "event "+typ)
	}
}
