package health_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/xdplb/xdplb/controlplane/health"
)

func TestReasonOf(t *testing.T) {
	base := &health.Error{Reason: health.ReasonRefused, Err: errors.New("connect: connection refused")}
	tests := []struct {
		name string
		err  error
		want health.Reason
	}{
		{"nil", nil, ""},
		{"typed", base, health.ReasonRefused},
		{"wrapped", fmt.Errorf("check web/198.18.0.21: %w", base), health.ReasonRefused},
		{"bare deadline", fmt.Errorf("probe: %w", context.DeadlineExceeded), health.ReasonTimeout},
		{"bare cancel", context.Canceled, health.ReasonCanceled},
		{"untyped", errors.New("boom"), health.ReasonOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want, got := tt.want, health.ReasonOf(tt.err); want != got {
				t.Errorf("want %q, got %q", want, got)
			}
		})
	}
	if want, got := "refused: connect: connection refused", base.Error(); want != got {
		t.Errorf("Error(): want %q, got %q", want, got)
	}
	if !errors.Is(fmt.Errorf("x: %w", base), base.Err) {
		t.Error("errors.Is does not reach the wrapped cause")
	}
}
