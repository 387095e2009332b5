package lab

import (
	"context"
	"strings"
	"testing"
)

// A lab started from a lab process, or running a test binary as its
// xdplb, would start labs without end: Up refuses both before building
// anything.
func TestUpRefusesToRecurse(t *testing.T) {
	o := Options{Prefix: "xnever-", RunDir: "/run/xdplb-never", PinRoot: "/sys/fs/bpf/xdplb-never"}
	t.Run("started by a lab", func(t *testing.T) {
		t.Setenv(childEnv, "1")
		_, err := Up(context.Background(), DefaultTopology(), Options{Prefix: o.Prefix, RunDir: o.RunDir, PinRoot: o.PinRoot, Binary: "/bin/true"})
		if err == nil || !strings.Contains(err.Error(), childEnv) {
			t.Errorf("Up = %v, want a refusal naming %s", err, childEnv)
		}
	})
	t.Run("test binary as xdplb", func(t *testing.T) {
		_, err := Up(context.Background(), DefaultTopology(), o)
		if err == nil || !strings.Contains(err.Error(), "test binary") {
			t.Errorf("Up = %v, want a refusal to run the test binary", err)
		}
	})
}
