//go:build !race

package sim

// raceEnabled reports that the test runs under the race detector, which
// makes each seed several times slower: TestSim covers fewer.
const raceEnabled = false
