package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReceiver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	text := out.String()
	t.Log(text)

	// The dispatcher's deliveries verified on every route.
	require.Contains(t, text, "deliveries: 3 of 3 Success\n")
	require.Regexp(t, `(?m)^  /simple    X-Convoy-Signature [0-9a-f]{28}…$`, text)
	require.Regexp(t, `(?m)^  /advanced  X-Convoy-Signature t=\d+,v1=[0-9a-f]+…$`, text)
	require.Regexp(t, `(?m)^  /standard  webhook-id \S+…, webhook-timestamp \d+, webhook-signature v1,\S+…$`, text)
	require.Equal(t, 3, strings.Count(text, `body {"user":42,"plan":"pro"}`))

	// Each forged request was refused with 401 and the right typed error.
	for _, want := range []struct{ what, path, sentinel string }{
		{`body changed in transit ("pro" to "prn")`, "/advanced", "ErrSignatureMismatch"},
		{"signed with another secret", "/standard", "ErrSignatureMismatch"},
		{"signature header removed", "/simple", "ErrMissingSignature"},
		{"right secret, signed 10 min ago", "/advanced", "ErrTimestampExpired"},
	} {
		line := "  " + want.what + " -> " + want.path + `: HTTP 401 "webhook refused: convoy.` + want.sentinel + `"` + "\n" +
			"    the handler's error: "
		require.Contains(t, text, line)
		require.Regexp(t, regexp.QuoteMeta(line)+`"[^"]+", errors\.Is\(err, convoy\.`+want.sentinel+`\)\n`, text)
	}
	require.Contains(t, text, "the receiver accepted 3 requests and refused 4\n")
}

// TestHandlerRefusesFlippedByte checks every route: a request signed with
// the right secret verifies, and the same request with one body byte
// flipped is refused with ErrSignatureMismatch.
func TestHandlerRefusesFlippedByte(t *testing.T) {
	secret, err := convoy.GenerateSecret()
	require.NoError(t, err)
	rc := newReceiver(secret)
	body := []byte(`{"user":42}`)
	for _, rt := range routes {
		t.Run(rt.Path, func(t *testing.T) {
			h, err := sign(rt.Signing, secret, "msg_1", body, time.Now())
			require.NoError(t, err)

			for _, tc := range []struct {
				name string
				body []byte
				code int
			}{
				{"intact", body, http.StatusNoContent},
				{"flipped", append(bytes.Clone(body[:len(body)-2]), body[len(body)-2]^1, body[len(body)-1]), http.StatusUnauthorized},
			} {
				req := httptest.NewRequest(http.MethodPost, rt.Path, bytes.NewReader(tc.body))
				req.Header = h.Clone()
				w := httptest.NewRecorder()
				rc.ServeHTTP(w, req)
				require.Equal(t, tc.code, w.Code, tc.name)
			}
			seen := rc.seen()
			last := seen[len(seen)-1]
			require.Equal(t, rt.Path, last.Path)
			require.ErrorIs(t, last.Err, convoy.ErrSignatureMismatch)
		})
	}
}
