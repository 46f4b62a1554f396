package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDashboardDemo runs the demo with its clock sped up: the dashboard
// answers at the printed address, and the dying endpoint dies.
func TestDashboardDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, options{addr: "127.0.0.1:0", dieAfter: 300 * time.Millisecond, every: 50 * time.Millisecond, retry: 20 * time.Millisecond})
	}()

	addr := regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+/webhooks/)`)
	var base string
	require.Eventually(t, func() bool {
		m := addr.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "the address is printed")

	// The dead endpoint (connections refused) and the dying one go inactive.
	require.Eventually(t, func() bool {
		return strings.Count(out.String(), "-> inactive (retries-exhausted)") == 2
	}, 20*time.Second, 10*time.Millisecond, "two endpoints die:\n%s", out)

	apps := get(t, base+"apps")
	require.Contains(t, apps, "convoy demo")
	for _, name := range []string{"Acme Corp", "Globex", "Initech"} {
		require.Contains(t, apps, ">"+name+"<")
	}
	m := regexp.MustCompile(`href="app\?id=([0-9a-f-]+)">Globex<`).FindStringSubmatch(apps)
	require.NotNil(t, m)
	globex := get(t, base+"app?id="+m[1])
	require.Contains(t, globex, `<span class="badge badge-inactive">inactive</span>`)
	require.Contains(t, globex, "/globex/events/[REDACTED]")
	require.Contains(t, get(t, base), "Deliveries by status")
	require.Contains(t, get(t, strings.TrimSuffix(base, "webhooks/")), "Deliveries by status", "/ leads to the dashboard")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not stop")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	return string(b)
}

// lockedBuffer is an io.Writer for the demo's output, which the
// dispatcher's hook writes from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
