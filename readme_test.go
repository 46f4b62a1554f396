package convoy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMECodeCompiles: every Go block in README.md appears verbatim in
// examples/readme (which go vet and go build compile) or in another
// example program, so the README never shows code that does not build.
func TestREADMECodeCompiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks, "README.md has Go code")
	var sources []string
	for _, dir := range []string{"examples/readme", "examples/quickstart", "examples/receiver", "examples/replicas", "convoyui", "otelconvoy", "promconvoy/example"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			sources = append(sources, string(b))
		}
	}
	all := strings.Join(sources, "\n")
	for _, b := range blocks {
		require.Contains(t, all, b[1], "README block not found in an example program")
	}
}

// TestREADMECommands: the README states the two commands a newcomer runs.
func TestREADMECommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "go run ./examples/quickstart")
	require.Contains(t, string(readme), "go test ./...")
	ci, err := os.ReadFile(".ci/run")
	require.NoError(t, err)
	require.Contains(t, string(ci), "go test -count=1 ./...")
}
