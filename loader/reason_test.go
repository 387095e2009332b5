package loader

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// The Go names must follow the enums of the compiled object: a reason
// appended in C without a Go name fails here, not in a dashboard.
func TestNamesMatchBTF(t *testing.T) {
	spec, err := loadLb()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		enum, prefix string
		name         func(uint64) string
		count        int
	}{
		{"lb_reason", "LB_REASON_", func(v uint64) string { return Reason(v).String() }, NumReasons},
		{"lb_event", "LB_EVENT_", func(v uint64) string { return Event(v).String() }, NumEvents},
		{"lb_backend_state", "LB_BACKEND_", func(v uint64) string { return BackendState(v).String() }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.enum, func(t *testing.T) {
			var e *btf.Enum
			if err := spec.Types.TypeByName(tt.enum, &e); err != nil {
				t.Fatalf("enum %s in BTF: %v", tt.enum, err)
			}
			n := 0
			for _, v := range e.Values {
				want := strings.ToLower(strings.TrimPrefix(v.Name, tt.prefix))
				if want == "max" {
					if tt.count != int(v.Value) {
						t.Errorf("%s = %d, want the Go count %d", v.Name, v.Value, tt.count)
					}
					continue
				}
				n++
				if got := tt.name(v.Value); want != got {
					t.Errorf("%s (%d): Go name %q, want %q", v.Name, v.Value, got, want)
				}
			}
			if tt.count >= 0 && tt.count != n {
				t.Errorf("%d named values, want %d", n, tt.count)
			}
		})
	}
	if want, got := "reason_99", Reason(99).String(); want != got {
		t.Errorf("Reason(99) = %q, want %q", got, want)
	}
	if want, got := "event_99", Event(99).String(); want != got {
		t.Errorf("Event(99) = %q, want %q", got, want)
	}
}
