package convoy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func TestRetryPolicies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy convoy.RetryPolicy
		want   []time.Duration // waits after failure 1, 2, …; then it stops
	}{
		{"linear", convoy.LinearRetry(10*time.Second, 3), []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"exponential capped", convoy.ExponentialRetry(time.Second, 2, 5*time.Second, 0, 5),
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"exponential default multiplier", convoy.ExponentialRetry(time.Second, 0, 0, 0, 3),
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"schedule", convoy.ScheduleRetry(0, time.Second, time.Minute, time.Hour), []time.Duration{time.Second, time.Minute, time.Hour}},
		{"no retries", convoy.LinearRetry(time.Second, 0), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, c.policy.Validate())
			for i, want := range c.want {
				got, ok := c.policy.NextRetry(i + 1)
				require.True(t, ok, "retry %d", i+1)
				require.Equal(t, want, got, "retry %d", i+1)
			}
			_, ok := c.policy.NextRetry(len(c.want) + 1)
			require.False(t, ok, "stops after %d retries", len(c.want))
		})
	}
}

func TestStandardWebhooksRetryIsTheDefaultScheduleWithJitter(t *testing.T) {
	t.Parallel()
	p := convoy.StandardWebhooksRetry()
	base := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
	for i, b := range base {
		for range 50 {
			got, ok := p.NextRetry(i + 1)
			require.True(t, ok)
			require.GreaterOrEqual(t, got, b*8/10)
			require.LessOrEqual(t, got, b*12/10)
		}
	}
	_, ok := p.NextRetry(len(base) + 1)
	require.False(t, ok)
}

func TestRetryPolicyValidation(t *testing.T) {
	t.Parallel()
	for _, p := range []convoy.RetryPolicy{
		{Kind: "bogus"},
		convoy.LinearRetry(-1, 1),
		convoy.LinearRetry(time.Second, -1),
		convoy.ExponentialRetry(time.Second, 2, time.Minute, 1.5, 3),
		convoy.ScheduleRetry(0, -time.Second),
	} {
		require.ErrorIs(t, p.Validate(), convoy.ErrInvalidRetry)
	}
}

func TestDeadEndpointPolicies(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	require.True(t, convoy.DeadOnExhaustedDelivery{}.Dead(convoy.EndpointHealth{}, true, now))
	require.False(t, convoy.DeadOnExhaustedDelivery{}.Dead(convoy.EndpointHealth{ConsecutiveFailures: 100}, false, now))

	p := convoy.DeadAfterFailures{Deliveries: 3, Window: time.Hour}
	require.False(t, p.Dead(convoy.EndpointHealth{ConsecutiveFailedDeliveries: 2}, true, now))
	require.True(t, p.Dead(convoy.EndpointHealth{ConsecutiveFailedDeliveries: 3}, false, now))
	require.False(t, p.Dead(convoy.EndpointHealth{FailingSince: now.Add(-59 * time.Minute)}, false, now))
	require.True(t, p.Dead(convoy.EndpointHealth{FailingSince: now.Add(-time.Hour)}, false, now))
	require.False(t, convoy.DeadAfterFailures{}.Dead(convoy.EndpointHealth{ConsecutiveFailedDeliveries: 99, FailingSince: now.Add(-99 * time.Hour)}, true, now))
}

// TestExponentialRetryNeverOverflows: late attempts of a long schedule
// wait MaxRetryWait at most, never a negative or wrapped duration.
func TestExponentialRetryNeverOverflows(t *testing.T) {
	p := convoy.ExponentialRetry(time.Second, 2, 0, 0.2, 1000)
	for _, n := range []int{40, 63, 64, 100, 1000} {
		d, ok := p.NextRetry(n)
		require.True(t, ok)
		require.Greater(t, d, time.Duration(0))
		require.LessOrEqual(t, d, convoy.MaxRetryWait)
	}
}
