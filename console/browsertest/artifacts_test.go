//go:build go1.26

package browsertest

import "testing"

// artifactDir is where the screenshots go: t.ArtifactDir, kept under the
// output directory with go test -artifacts.
func artifactDir(t *testing.T) string { return t.ArtifactDir() }
