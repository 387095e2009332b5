package daemon

import (
	"context"
	"fmt"

	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
)

// checkerFor returns the checker of a health_check section; nil for type
// none.
func checkerFor(hc config.HealthCheck) (health.Checker, error) {
	switch hc.Type {
	case config.CheckTCP:
		return &health.TCP{}, nil
	case config.CheckHTTP, config.CheckHTTPS:
		c := health.HTTPConfig{
			TLS:                hc.Type == config.CheckHTTPS,
			Path:               hc.Path,
			Host:               hc.Host,
			BodyContains:       hc.ExpectBody,
			InsecureSkipVerify: hc.TLSSkipVerify,
		}
		if hc.ExpectStatus != 0 {
			c.ExpectStatus = []int{hc.ExpectStatus}
		}
		return health.NewHTTP(c)
	case config.CheckExec:
		return health.NewExec(health.ExecConfig{Command: hc.Command})
	case config.CheckNone, "":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown health check type %q", hc.Type)
}

// checkers builds the checker of every configured service, by name, and
// reports a service whose check cannot be built as a Problem located at
// its health_check, as a refused configuration.
func checkers(cfg *config.Config) (map[string]health.Checker, error) {
	out := map[string]health.Checker{}
	var probs []config.Problem
	for i, s := range cfg.Services {
		c, err := checkerFor(s.HealthCheck)
		if err != nil {
			probs = append(probs, cfg.Problemf(fmt.Sprintf("services[%d].health_check", i), "%v", err))
			continue
		}
		if c != nil {
			out[s.Name] = c
		}
	}
	if len(probs) > 0 {
		return nil, &config.Error{Problems: probs}
	}
	return out, nil
}

// nsChecker runs a checker in the director's network namespace, so that
// its connections (and exec checks' processes) start from there.
type nsChecker struct {
	health.Checker
	inNS func(func() error) error
}

func (c nsChecker) Check(ctx context.Context, t health.Target) error {
	var err error
	if nerr := c.inNS(func() error { err = c.Checker.Check(ctx, t); return nil }); nerr != nil {
		return nerr
	}
	return err
}

// target describes one checked backend for the monitor and the metrics.
type target struct {
	key       bkey
	service   string
	checkType string
}

// healthSpecs returns the monitor's targets for the checked backends of
// the services, with initial states from init (a backend missing from it
// starts as the health package's default), and the targets by ID.
func healthSpecs(svcs []*service, inNS func(func() error) error, init map[bkey]health.Initial) ([]health.Spec, map[string]target) {
	var specs []health.Spec
	targets := map[string]target{}
	for _, s := range svcs {
		c := s.checker
		if !s.checked() || c == nil {
			continue
		}
		if inNS != nil {
			c = nsChecker{Checker: c, inNS: inNS}
		}
		hc := s.check
		port := hc.Port
		if port == 0 {
			port = s.vip.Port
		}
		for _, b := range s.backends {
			id := s.name + "/" + b.addr.String()
			k := bkey{s.vip, b.addr}
			targets[id] = target{key: k, service: s.name, checkType: string(hc.Type)}
			specs = append(specs, health.Spec{
				ID: id,
				Target: health.Target{
					Address: b.addr, Port: port, Service: s.name,
					VIP: s.vip.Addr, ServicePort: s.vip.Port,
				},
				Checker:  c,
				Interval: hc.Interval,
				Timeout:  hc.Timeout,
				Rise:     hc.Rise,
				Fall:     hc.Fall,
				Initial:  init[k],
			})
		}
	}
	return specs, targets
}
