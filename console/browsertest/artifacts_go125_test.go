//go:build !go1.26

package browsertest

import "testing"

// artifactDir is where the screenshots go: before Go 1.26, a temporary
// directory that the log names.
func artifactDir(t *testing.T) string { return t.TempDir() }
