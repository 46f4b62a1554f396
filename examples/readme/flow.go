package main

import (
	"context"
	"time"

	"github.com/convoykit/convoy"
)

// flowControl holds the README's "Flow control" blocks.
func flowControl(ctx context.Context, d *convoy.Dispatcher, app *convoy.App, st convoy.Store) convoy.Config {
	d.AddEndpoint(ctx, app.ID, convoy.Endpoint{
		URL:       "https://partner.example/hooks",
		RateLimit: &convoy.RateLimit{PerSecond: 10, Burst: 20}, // 10/s sustained, 20 at once
	})
	cfg := convoy.Config{Store: st, Adaptive: &convoy.AdaptiveConcurrency{}}
	cfg.Breaker = &convoy.CircuitBreaker{
		FailureRate: 0.5, MinAttempts: 20, Window: time.Minute, CoolDown: 30 * time.Second,
	}
	return cfg
}
