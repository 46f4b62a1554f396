package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServesMetrics runs the example and scrapes /metrics until the
// deliveries show, successes and the flaky receiver's failures both.
func TestServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, out, options{addr: "127.0.0.1:0", every: 10 * time.Millisecond}) }()

	addr := regexp.MustCompile(`metrics: (http://127\.0\.0\.1:\d+/metrics)`)
	var url string
	require.Eventually(t, func() bool {
		if m := addr.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	}, 10*time.Second, 10*time.Millisecond, "the address is printed")

	var text string
	require.Eventually(t, func() bool {
		text = scrape(t, url)
		return value(text, `convoy_deliveries_total{status="success"}`) >= 5 &&
			value(text, `convoy_attempts_total{status_class="5xx",success="false"}`) >= 1
	}, 20*time.Second, 20*time.Millisecond, "deliveries counted")
	require.Positive(t, value(text, "convoy_events_sent_total"))
	require.Equal(t, float64(2), value(text, `convoy_endpoints{status="active"}`))
	for _, name := range []string{
		"convoy_attempt_duration_seconds_bucket", "convoy_retries_total", "convoy_queue_due",
		"convoy_oldest_due_age_seconds", "convoy_queue_deliveries", "convoy_in_flight",
		"go_goroutines", // the registry serves the process's own metrics beside
	} {
		require.Contains(t, text, "\n"+name, name)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// value returns the value of the sample named series (name and labels as
// exposed), -1 when it is absent.
func value(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
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
