package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/internal/spantest"
	"github.com/blastradius/blastradius/internal/telemetry"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{strings.Repeat("a", 300), strings.Repeat("a", 256)},
		{"a" + strings.Repeat("é", 200), "a" + strings.Repeat("é", 127)}, // 255 bytes: é would end at 257
	}
	for _, tt := range tests {
		if got := telemetry.Text(tt.in); got != tt.want {
			t.Errorf("Text(%d bytes) = %d bytes, want %d", len(tt.in), len(got), len(tt.want))
		}
	}
}

func TestRecording(t *testing.T) {
	rec := spantest.New(t)
	ctx, span := rec.Start(context.Background(), "op")
	defer span.End()
	if telemetry.Recording(context.Background()) != nil || telemetry.Recording(spantest.NotRecording(ctx)) != nil {
		t.Fatal("Recording returned a span for a context without a recording span")
	}
	if telemetry.Recording(ctx) != span {
		t.Fatal("Recording did not return the recording span")
	}
	sampledOut := spantest.NotRecording(context.Background())
	if n := testing.AllocsPerRun(1000, func() { _ = telemetry.Recording(sampledOut) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
