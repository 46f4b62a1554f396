package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDSN is CONVOY_TEST_POSTGRES, or the local test database. The test
// fails, never skips, when PostgreSQL is unreachable.
func testDSN() string {
	if s := os.Getenv("CONVOY_TEST_POSTGRES"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func TestReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	o := options{dsn: testDSN(), schema: "t_" + hex.EncodeToString(b[:]), replicas: 3}

	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, o), "this test needs PostgreSQL (set CONVOY_TEST_POSTGRES)\n%s", out.String())
	text := out.String()
	t.Log(text)

	require.Contains(t, text, "3 replicas migrated schema "+o.schema+" at once")
	require.Len(t, regexp.MustCompile(`(?m)^order \d+ for \w+ committed through replica-\d with event `).FindAllString(text, -1), 5)
	require.Contains(t, text, "order for mallory: payment declined, rolled back")
	got := regexp.MustCompile(`(?m)^  order\.created order (\d+) for (\w+), \d+\.\d\d, delivery \w+, delivered by replica-\d$`).FindAllStringSubmatch(text, -1)
	require.Len(t, got, 5)
	var customers []string
	for _, g := range got {
		customers = append(customers, g[2])
	}
	require.Equal(t, []string{"alice", "bob", "carol", "dave", "erin"}, customers)
	require.Contains(t, text, "orders table: 5 rows; rolled back orders delivered: 0\n")
	require.Regexp(t, `delivered: 5 of 5 committed orders; by replica: replica-1=\d replica-2=\d replica-3=\d\n`, text)

	// The example dropped its schema.
	pool, err := pgxpool.New(ctx, o.dsn)
	require.NoError(t, err)
	defer pool.Close()
	var exists bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", o.schema).Scan(&exists))
	require.False(t, exists, "schema %s left behind", pgx.Identifier{o.schema}.Sanitize())
}
