package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDurable(t *testing.T) {
	// run makes its bolt file under os.TempDir; point that at a directory
	// of the test's own to check that run removes the file.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	text := out.String()
	t.Log(text)

	// First process: everything was refused and waits in Retry.
	require.Contains(t, text, "sent 5 events to http://127.0.0.1:")
	require.Contains(t, text, "connection refused")
	require.Contains(t, text, "dispatcher stopped and store closed")

	// Second process: the state came back from the file.
	require.Contains(t, text, "reopened the file: app \"Acme Corp\", endpoint http://127.0.0.1:")
	require.Contains(t, text, ", 5 deliveries\n")
	retry := regexp.MustCompile(`(?m)^  (order\.\w+) +Retry after (\d+) failed attempts, next attempt due `).FindAllStringSubmatch(text, -1)
	require.Len(t, retry, 5)
	for i, typ := range eventTypes {
		require.Equal(t, typ, retry[i][1])
		n, _ := strconv.Atoi(retry[i][2])
		require.GreaterOrEqual(t, n, 2, "each delivery failed at least twice before the restart")
	}
	require.Contains(t, text, "survived the restart: 5 of 5 deliveries in Retry\n")

	// Every event arrived after the receiver came up, numbering its
	// attempts on from where the first process stopped.
	success := regexp.MustCompile(`(?m)^  (order\.\w+) +Success at attempt (\d+) \(HTTP 204\); the (\d+) before it found the receiver down$`).FindAllStringSubmatch(text, -1)
	require.Len(t, success, 5)
	for i, typ := range eventTypes {
		require.Equal(t, typ, success[i][1])
		n, _ := strconv.Atoi(success[i][2])
		before, _ := strconv.Atoi(success[i][3])
		require.Equal(t, n-1, before)
		require.Equal(t, retry[i][2], success[i][3], "no failed attempt after the restart")
	}
	summary := regexp.MustCompile(`delivered: 5 of 5 events; the receiver accepted (\d+) requests for 5 distinct deliveries\n`).FindStringSubmatch(text)
	require.NotNil(t, summary)
	accepted, _ := strconv.Atoi(summary[1])
	require.GreaterOrEqual(t, accepted, 5)
	require.Less(t, strings.Index(text, "the receiver is up"), strings.Index(text, "new dispatcher started"))

	// The temporary directory with the bolt file is gone.
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left)
}
