//go:build !race

package crashtest

// raceEnabled reports that the test runs under the race detector, so the
// program it kills is built with -race too.
const raceEnabled = false
