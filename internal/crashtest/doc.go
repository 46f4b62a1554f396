// Package crashtest proves convoy's at-least-once promise the way storage
// engines prove theirs: its test kills a sending process (cmd/sender) with
// SIGKILL at random moments, restarts it on the same bolt file, lets the
// last run drain, and counts what the receiver got against what Send
// acknowledged. It has no API; run it with
//
//	go test ./internal/crashtest/ -v -seed=N
package crashtest
