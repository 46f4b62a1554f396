package convoyui

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAgo(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "just now", 500 * time.Millisecond: "just now", 42 * time.Second: "42 s ago",
		5 * time.Minute: "5 min ago", 3 * time.Hour: "3 h ago", 72 * time.Hour: "3 days ago",
		-30 * time.Second: "in 30 s", -2 * time.Hour: "in 2 h",
	} {
		require.Equal(t, want, ago(now, now.Add(-d)), d)
	}
	require.Equal(t, "never", ago(now, time.Time{}))
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Microsecond: "300 µs", 12500 * time.Microsecond: "12.5 ms", 2346 * time.Millisecond: "2.35 s",
	} {
		require.Equal(t, want, formatDuration(d))
	}
	require.Equal(t, "—", formatAge(0))
	require.Equal(t, "5 min", formatAge(5*time.Minute))
}

func TestBodies(t *testing.T) {
	require.Equal(t, "{\n  \"a\": [\n    1,\n    2\n  ]\n}", prettyJSON([]byte(`{"a":[1,2]}`)))
	require.Equal(t, "plain text", prettyJSON([]byte("plain text")))
	require.Equal(t, "<html>", bodyText([]byte("<html>")), "escaping is the template's job")
	require.Equal(t, "(3 bytes, not UTF-8; the first 3 in base64)\n//79", bodyText([]byte{0xff, 0xfe, 0xfd}))
	require.Equal(t, "", bodyText(nil))
}

func TestShortID(t *testing.T) {
	require.Equal(t, "…8a9b0c1d", shortID("0190a1b2-c3d4-7e5f-8a9b-00008a9b0c1d"))
	require.Equal(t, "abc", shortID("abc"))
}
