package convoy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecordDeadlinesBoundEveryCall: Record calls that start within one
// step share a context, each call gets between timeout and timeout+step,
// a call after the step gets a fresh context, and all of them end with
// the parent.
func TestRecordDeadlinesBoundEveryCall(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	now := time.Now() // the contexts' deadlines are real times: live ones
	r := &recordDeadlines{parent: parent, step: time.Second, timeout: 30 * time.Second, now: func() time.Time { return now }}

	first := r.get()
	start := now
	dl, ok := first.Deadline()
	require.True(t, ok)
	require.Equal(t, start.Add(31*time.Second), dl)

	now = start.Add(time.Second) // the step's last start
	require.Same(t, first, r.get())
	left, _ := r.get().Deadline()
	require.Equal(t, 30*time.Second, left.Sub(now), "the latest call in a step gets timeout")

	now = start.Add(time.Second + time.Nanosecond)
	second := r.get()
	require.NotSame(t, first, second)
	dl, _ = second.Deadline()
	require.Equal(t, now.Add(31*time.Second), dl)

	require.NoError(t, first.Err())
	require.NoError(t, second.Err())
	cancel()
	require.Error(t, first.Err())
	require.Error(t, second.Err())
}

// TestClaimOrderTakesTheLatestClaim: with two claims in flight, the
// result of the older one, landing last, says nothing newer about the
// store than the newer one's, and is not taken.
func TestClaimOrderTakesTheLatestClaim(t *testing.T) {
	var o claimOrder
	older, newer := o.start(), o.start()
	require.True(t, o.latest(newer))
	require.False(t, o.latest(older), "an older claim's result taken after a newer one's")
	third := o.start()
	require.True(t, o.latest(third))
}
