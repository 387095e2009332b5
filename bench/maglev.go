package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/controlplane/maglev"
)

// maglevSection measures how long the control plane takes to build one
// weighted Maglev table (controlplane/maglev), the work behind every
// backend change, at the sizes the Maglev paper (NSDI 2016) reports.
type maglevSection struct{}

func (maglevSection) Name() string { return "maglev" }

const maglevMethod = "Wall time of one maglev.Builder.Build with a warm builder (buffers reused, as the daemon " +
	"rebuilds), N backends named by address with weights 1..4, table size M. Median over the rounds. paper_ms: " +
	"the Maglev paper's figure for that M (1.8 ms at 65537, 22.9 ms at 655373, N not varied there). " +
	"Target: N=1000, M=65537 within 5 ms (met: 1 when it is)."

// maglevTargetMS is the build-time bound at N=1000, M=65537.
const maglevTargetMS = 5

func (maglevSection) Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error) {
	rep := SectionReport{
		Name:   "maglev",
		Method: maglevMethod,
		Columns: []Column{
			{Key: "paper_ms", Header: "paper ms"},
			{Key: "met", Header: "met"},
		},
	}
	paper := map[uint32]float64{maglev.DefaultSize: 1.8, maglev.LargeSize: 22.9}
	rounds := max(cfg.Rounds, 5)
	for _, m := range []uint32{maglev.DefaultSize, maglev.LargeSize} {
		for _, n := range []int{10, 100, 1000} {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			backends := maglevBackends(n)
			var b maglev.Builder
			table, err := b.Build(nil, backends, m) // warm-up: allocate once
			if err != nil {
				return rep, fmt.Errorf("maglev N=%d M=%d: %w", n, m, err)
			}
			samples := make([]float64, rounds)
			for i := range samples {
				start := time.Now()
				table, err = b.Build(table, backends, m)
				samples[i] = float64(time.Since(start).Nanoseconds()) / 1e6
				if err != nil {
					return rep, fmt.Errorf("maglev N=%d M=%d: %w", n, m, err)
				}
			}
			if err := checkMaglevTable(table, n); err != nil {
				return rep, fmt.Errorf("maglev N=%d M=%d: %w", n, m, err)
			}
			r := newResult(fmt.Sprintf("n%d/m%d", n, m), "ms", samples)
			r.Metrics = map[string]float64{"paper_ms": paper[m]}
			if n == 1000 && m == maglev.DefaultSize {
				r.Metrics["met"] = float64(btoi(r.Value <= maglevTargetMS))
			}
			log.Debug("maglev build", "n", n, "m", m, "ms", r.Value)
			rep.Results = append(rep.Results, r)
		}
	}
	return rep, nil
}

// maglevBackends returns n backends 198.18.x.y with weights 1..4.
func maglevBackends(n int) []maglev.Backend {
	bs := make([]maglev.Backend, n)
	base := netip.MustParseAddr("198.18.0.1").As4()
	for i := range bs {
		a := base
		a[2] += byte(i / 250)
		a[3] += byte(i % 250)
		bs[i] = maglev.Backend{Name: netip.AddrFrom4(a).String(), Weight: uint32(i%4 + 1)}
	}
	return bs
}

// checkMaglevTable proves the build did the work: every slot names one of
// the n backends and every backend owns at least one slot.
func checkMaglevTable(t maglev.Table, n int) error {
	seen := make([]bool, n)
	for slot, i := range t {
		if i < 0 || int(i) >= n {
			return fmt.Errorf("slot %d names backend %d of %d", slot, i, n)
		}
		seen[i] = true
	}
	for i, ok := range seen {
		if !ok {
			return fmt.Errorf("backend %d owns no slot", i)
		}
	}
	return nil
}
