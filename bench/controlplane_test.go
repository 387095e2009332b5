package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/testenv"
)

// TestControlPlaneSmoke runs the control-plane section at a small size,
// so its harness and self-checks cannot rot; the figures mean nothing at
// this size and are not judged, except that each is there and positive.
func TestControlPlaneSmoke(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "ip")
	sec := controlPlaneSection{sizes: &cpSizes{services: 20, backends: 3, changed: 4, addRemove: 2, latencyRounds: 3, ringSize: 1021}}
	rep, err := sec.Run(context.Background(), Config{Rounds: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"start/20x3", "reload/20x3/unchanged", "reload/20x3/one-changed", "reload/20x3/4-changed",
		"reload/20x3/2-removed-2-added", "scrape/20x3", "rss/20x3", "check-to-map/3",
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
	}
	for _, name := range want {
		r, ok := got[name]
		if !ok {
			t.Errorf("no result %s", name)
			continue
		}
		if r.Value <= 0 {
			t.Errorf("%s = %v %s, want a positive figure", name, r.Value, r.Unit)
		}
		if strings.HasPrefix(name, "reload/") && len(r.Checked) == 0 {
			t.Errorf("%s: nothing checked", name)
		}
	}
	if r := got["check-to-map/3"]; r.Metrics["table_ms"] <= 0 || r.Metrics["polled_ms"] <= 0 {
		t.Errorf("check-to-map metrics %v", r.Metrics)
	}
}
