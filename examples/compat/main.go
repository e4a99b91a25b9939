package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/examples/internal/metricsprint"
	"github.com/blastradius/blastradius/logbudget"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
}

// Claims is today's ("hub") token type.
type Claims struct {
	User   string
	Scopes []string
}

// claimsV2 is what v2 tokens carried: a single scope.
type claimsV2 struct {
	User  string `json:"user"`
	Scope string `json:"scope"`
}

// v1 tokens are "user:uid"; v2 "v2:" + JSON; v3 "v3:" + JSON with scopes.
func parseV1(b []byte) (claimsV2, error) {
	user, ok := strings.CutPrefix(string(b), "user:")
	if !ok || user == "" {
		return claimsV2{}, errors.New("not a v1 token")
	}
	return claimsV2{User: user, Scope: "read"}, nil
}

func parseV2(b []byte) (claimsV2, error) {
	var c claimsV2
	err := json.Unmarshal(bytes.TrimPrefix(b, []byte("v2:")), &c)
	return c, err
}

func v2ToV3(c claimsV2) (Claims, error) { return Claims{User: c.User, Scopes: []string{c.Scope}}, nil }

func parseV3(b []byte) (Claims, error) {
	var c Claims
	err := json.Unmarshal(bytes.TrimPrefix(b, []byte("v3:")), &c)
	return c, err
}

func run(ctx context.Context, out io.Writer) error {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

	// One log budget for the service: hand the same logger to every
	// blastradius package. Times are left out to keep the output stable.
	budget, err := logbudget.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: dropTime}),
		logbudget.WithKeyAttr("reason"), logbudget.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer budget.Flush(ctx)

	dec, err := compat.New([]compat.Version[Claims]{
		{Name: "v3", Match: compat.Prefix("v3:"), Decode: parseV3},
		{Name: "v2", Match: compat.Prefix("v2:"), Decode: compat.Then(parseV2, v2ToV3)},
		// Legacy tokens carry no marker: v1 has no Match and is the fallback.
		{Name: "v1", Decode: compat.Then(parseV1, v2ToV3), Sunset: now.AddDate(0, -1, 0)},
	}, compat.WithName("tokens"), compat.WithMeterProvider(mp),
		compat.WithClock(func() time.Time { return now }),
		compat.WithLogger(slog.New(budget)))
	if err != nil {
		return err
	}
	for _, tok := range []string{
		`v3:{"User":"ada","Scopes":["read","write"]}`,
		`v2:{"user":"bob","scope":"admin"}`,
		`user:carol`,
		`v9:from-the-future`,
	} {
		c, res, err := dec.Decode(ctx, []byte(tok))
		if err != nil {
			fmt.Fprintf(out, "%-44s -> error (unrecognized=%v)\n", tok, errors.Is(err, compat.ErrUnrecognized))
			continue
		}
		fmt.Fprintf(out, "%-44s -> %s %v via %s fallback=%v past_sunset=%v\n", tok, c.User, c.Scopes, res.Version, res.Fallback, res.PastSunset)
	}
	for _, v := range dec.Stats().Versions {
		fmt.Fprintf(out, "version %s: %d decoded\n", v.Name, v.Total())
	}

	// I3: items was an array in API v1 and is a single object in API v2.
	type item struct{ SKU string }
	var shapes []string
	for _, body := range []string{`{"items":[{"SKU":"a"},{"SKU":"b"}]}`, `{"items":{"SKU":"c"}}`} {
		var resp struct {
			Items compat.OneOrMany[item] `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return err
		}
		shapes = append(shapes, resp.Items.Shape.String()+"/"+strconv.Itoa(len(resp.Items.Items)))
	}
	fmt.Fprintf(out, "items shapes (shape/count): %s\n", strings.Join(shapes, " "))
	fmt.Fprintln(out, "-- metrics:")
	return metricsprint.Print(ctx, out, reader, "blastradius.compat.")
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}
