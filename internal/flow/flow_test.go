package flow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBucketBurstThenRate(t *testing.T) {
	b := NewBucket(2, 3, t0) // 2/s, burst 3
	require.Equal(t, 3, b.Available(t0))
	b.Take(3, t0)
	require.Equal(t, 0, b.Available(t0))
	require.Equal(t, t0.Add(500*time.Millisecond), b.Next(t0), "one token every 500ms")
	require.Equal(t, 0, b.Available(t0.Add(499*time.Millisecond)))
	require.Equal(t, 1, b.Available(t0.Add(500*time.Millisecond)))
	require.Equal(t, 3, b.Available(t0.Add(time.Hour)), "never more than the burst")

	// Next is exact however the refills fell: at the time it returns, a
	// token is there.
	b = NewBucket(2, 1, t0)
	b.Take(1, t0)
	b.Available(t0.Add(499 * time.Millisecond))
	next := b.Next(t0.Add(499 * time.Millisecond))
	require.Equal(t, t0.Add(500*time.Millisecond), next)
	require.Equal(t, 1, b.Available(next))

	// Over a long run the rate holds: 2/s for 100 s is 200 tokens plus
	// the burst.
	b = NewBucket(2, 3, t0)
	taken := 0
	for now := t0; now.Before(t0.Add(100 * time.Second)); now = now.Add(10 * time.Millisecond) {
		n := b.Available(now)
		b.Take(n, now)
		taken += n
	}
	require.InDelta(t, 203, taken, 1)
}

func TestBucketSetKeepsTokensWithinTheNewBurst(t *testing.T) {
	b := NewBucket(10, 10, t0)
	b.Set(1, 2, t0)
	require.Equal(t, 2, b.Available(t0))
}

// TestAIMDConvergesToCapacity drives the controller against a receiver
// that serves capacity requests at once and answers 503 past that: the
// limit ends up oscillating just below and at the capacity, as TCP's
// window does, never far above it.
func TestAIMDConvergesToCapacity(t *testing.T) {
	for _, capacity := range []int{3, 10, 40} {
		a := NewAIMD(1, 64, 0.5, 100*time.Millisecond)
		now := t0
		var sum, n, overloads int
		for round := range 400 {
			limit := a.Limit()
			start := now
			now = now.Add(20 * time.Millisecond)
			for i := range limit {
				over := i >= capacity
				a.Observe(now, start, 10*time.Millisecond, !over, over)
				if over && round >= 200 {
					overloads++
				}
			}
			if round >= 200 {
				sum += limit
				n++
				require.LessOrEqual(t, limit, capacity+1, "capacity %d, round %d", capacity, round)
				require.GreaterOrEqual(t, limit, max(1, capacity/2-1), "capacity %d, round %d", capacity, round)
			}
		}
		mean := float64(sum) / float64(n)
		require.InDelta(t, float64(capacity)*0.8, mean, float64(capacity)*0.25+1, "capacity %d: mean limit %.1f", capacity, mean)
		require.Less(t, float64(overloads)/float64(sum), 0.15, "capacity %d: most requests fit", capacity)
	}
}

func TestAIMDIgnoresSignalsFromBeforeItsCut(t *testing.T) {
	a := NewAIMD(32, 64, 0.5, time.Second)
	start := t0
	require.True(t, a.Observe(t0.Add(time.Second), start, 0, false, true))
	require.Equal(t, 16, a.Limit())
	// The other requests of the same burst: started before the cut.
	for range 10 {
		require.False(t, a.Observe(t0.Add(time.Second), start, 0, false, true))
	}
	require.Equal(t, 16, a.Limit(), "one burst halves once")
	require.True(t, a.Observe(t0.Add(3*time.Second), t0.Add(2*time.Second), 0, false, true))
	require.Equal(t, 8, a.Limit())
}

func TestAIMDSlowSuccessesDoNotGrow(t *testing.T) {
	a := NewAIMD(4, 64, 0.5, 100*time.Millisecond)
	for range 100 {
		a.Observe(t0, t0, time.Second, true, false)
	}
	require.Equal(t, 4, a.Limit())
	for range 100 {
		a.Observe(t0, t0, time.Millisecond, true, false)
	}
	require.Greater(t, a.Limit(), 4)
	require.LessOrEqual(t, a.Limit(), 64)
}

func TestBreakerOpensHalfOpensCloses(t *testing.T) {
	b := NewBreaker(0.5, 4, time.Minute, 30*time.Second)
	now := t0
	// Below MinAttempts nothing trips, whatever the rate.
	for range 3 {
		require.Equal(t, Closed, b.Observe(now, true))
	}
	require.Equal(t, Open, b.Observe(now, true), "4 failures of 4")
	require.Equal(t, Open, b.State(now.Add(29*time.Second)))
	require.Equal(t, now.Add(30*time.Second), b.OpenUntil())
	now = now.Add(30 * time.Second)
	require.Equal(t, HalfOpen, b.State(now))
	// The probe fails: open again for a whole cool-down.
	require.Equal(t, Open, b.Observe(now, true))
	require.Equal(t, Open, b.State(now.Add(29*time.Second)))
	now = now.Add(30 * time.Second)
	require.Equal(t, HalfOpen, b.State(now))
	require.Equal(t, Closed, b.Observe(now, false), "a successful probe closes it")
	// Closed again with a fresh window: three failures do not trip it.
	for range 3 {
		require.Equal(t, Closed, b.Observe(now, true))
	}
}

func TestBreakerCountsOnlyTheWindow(t *testing.T) {
	b := NewBreaker(0.5, 4, time.Minute, time.Second)
	now := t0
	for range 3 {
		b.Observe(now, true)
	}
	now = now.Add(2 * time.Minute) // those failures are out of the window
	for range 3 {
		require.Equal(t, Closed, b.Observe(now, false))
	}
	require.Equal(t, Closed, b.Observe(now, true), "1 failure in 4")
	require.Equal(t, Closed, b.Observe(now, true), "2 in 5")
	require.Equal(t, Open, b.Observe(now, true), "3 in 6 reaches the rate")
}
