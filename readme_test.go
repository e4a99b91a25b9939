package blastradius_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeQuickStart checks that the program README.md shows under
// "Quick start" is Example_quickStart: the same body, line for line, and
// the same output. The README's program is what newcomers copy; the example
// is what CI runs.
func TestReadmeQuickStart(t *testing.T) {
	readme := read(t, "README.md")
	section := between(t, readme, "## Quick start\n", "\n## ")
	program := between(t, section, "```go\n", "```\n")
	_, rest, _ := strings.Cut(section, program+"```\n")
	output := between(t, rest, "\n```\n", "```\n")
	body := between(t, program, "func main() {\n", "\n}\n")

	example := read(t, "example_quickstart_test.go")
	exBody := between(t, example, "func Example_quickStart() {\n", "\t// Output:\n")
	exOutput := between(t, example, "\t// Output:\n", "}\n")

	if got, want := strings.TrimRight(body, "\n"), strings.TrimRight(exBody, "\n"); got != want {
		t.Errorf("README quick-start body differs from Example_quickStart:\nREADME:\n%s\nexample:\n%s", got, want)
	}
	var lines []string
	for l := range strings.SplitSeq(strings.TrimRight(exOutput, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t// "))
	}
	if got, want := strings.TrimRight(output, "\n"), strings.Join(lines, "\n"); got != want {
		t.Errorf("README quick-start output = %q, Example_quickStart's = %q", got, want)
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// between returns the text after the first from and before the next to.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, from)
	if !ok {
		t.Fatalf("%q not found", from)
	}
	before, _, ok := strings.Cut(after, to)
	if !ok {
		t.Fatalf("%q not found after %q", to, from)
	}
	return before
}
