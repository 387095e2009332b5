package health_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
)

// A daemon builds one checker per service from its configuration, one Spec
// per backend, and reacts to transitions in its own loop.
func ExampleMonitor() {
	checker, err := health.NewHTTP(health.HTTPConfig{Path: "/healthz", ExpectStatus: []int{200}})
	if err != nil {
		fmt.Println("config:", err)
		return
	}
	transitions := make(chan health.Transition, 64)
	m := health.NewMonitor(health.Options{
		Logger: slog.Default(),
		// Never called under a lock; a buffered channel keeps the
		// daemon's loop in charge.
		OnTransition: func(tr health.Transition) { transitions <- tr },
		// Metrics: a histogram of r.Duration, a counter by r.Reason.
		Observe: func(r health.Result) {},
	})
	defer m.Stop()

	var specs []health.Spec
	for _, addr := range []string{"198.18.0.21", "198.18.0.22"} {
		specs = append(specs, health.Spec{
			ID:       "web/" + addr,
			Target:   health.Target{Address: netip.MustParseAddr(addr), Port: 80, Service: "web"},
			Checker:  checker,
			Interval: time.Second,
			Timeout:  500 * time.Millisecond,
			Rise:     2,
			Fall:     3,
		})
	}
	// On every reload: Apply the new set; unchanged IDs keep their state.
	if err := m.Apply(specs); err != nil {
		fmt.Println("health:", err)
		return
	}
	select {
	case tr := <-transitions:
		fmt.Println(tr.ID, tr.From, "->", tr.To, tr.Reason)
	case <-time.After(10 * time.Millisecond):
	}
}
