package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/blastradius/blastradius/rollout"
)

// adminToken authorizes the operator against every instance's admin handler.
const adminToken = "Bearer tour-operator"

// adminServer serves reg's rollout admin handler on loopback, behind the
// operator's token.
func adminServer(reg *rollout.Registry) *httptest.Server {
	return httptest.NewServer(rollout.Handler(reg, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == adminToken
	}))
}

// adminPost sends one admin command (for example "new-pricing/kill") and
// fails unless it is answered 200.
func adminPost(ctx context.Context, base, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// quietGate keeps a gate's logs from interleaving with the table.
var quietGate = rollout.WithLogger(slog.New(slog.DiscardHandler))

// quietRegistry is a registry whose logs do not interleave with the table.
func quietRegistry() (*rollout.Registry, error) {
	return rollout.NewRegistry(quietGate)
}
