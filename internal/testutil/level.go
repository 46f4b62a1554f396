package testutil

import (
	"log/slog"
	"testing"
)

// LoggerAt is Logger with a minimum level, for tests too busy to log every
// attempt. What it writes is captured for LeakedSecrets like Logger's.
func LoggerAt(t testing.TB, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tWriter{t: t}, &slog.HandlerOptions{Level: level}))
}
