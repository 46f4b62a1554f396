//go:build race

package pgproof

// raceEnabled reports that the tests run under the race detector, so the
// programs they start are built with -race too.
const raceEnabled = true
