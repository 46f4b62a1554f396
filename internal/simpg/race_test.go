//go:build race

package simpg

// raceEnabled reports that the test runs under the race detector.
const raceEnabled = true
