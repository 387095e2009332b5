package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/loader"
)

type statsOptions struct {
	json     bool
	watch    bool
	interval time.Duration
}

func newStatsCmd(a *app) *cobra.Command {
	var o statsOptions
	c := &cobra.Command{
		Use:   "stats",
		Short: "Show the balancer's counters",
		Long: `Show the balancer's counters, summed over CPUs:

  reasons   why every packet left the program as it did: passed to the
            kernel (pass_*), forwarded (tx_dr, tx_tun, tx_icmp_too_big) or
            dropped (drop_*); each packet counts exactly once.
            pass_other_host counts frames for a VIP that were sent to
            another host's MAC (a switch flooding them) and left alone
  events    flow-table events: flow_hit (established flow), flow_new,
            flow_rehash (its backend went down or away), flow_syn_reuse
            (a SYN on a known 5-tuple, re-chosen by the ring),
            flow_rst_skipped, flow_evicted (a new flow replaced the
            least recently used of the 8 flows it may replace: the
            table is full), flow_insert_failed
  VIPs      packets and bytes forwarded per VIP
  backends  packets and bytes forwarded per backend

With --watch, the counters are printed again every --interval with rates
per second over the interval, until interrupted.`,
		Example: `  xdplb stats
  xdplb stats --watch --interval 2s
  xdplb stats --json | jq .reasons.drop_no_backend
  xdplb stats --watch --json | jq -c '.vips[] | {vip, packets_per_second}'`,
		Args: exactArgs(),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.runStats(c, o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.json, "json", false, "print JSON, one object per line with --watch (see statsJSON in cmd/xdplb/output.go)")
	f.BoolVarP(&o.watch, "watch", "w", false, "print again every --interval, with rates")
	f.DurationVar(&o.interval, "interval", time.Second, "time between prints with --watch")
	return c
}

func (a *app) runStats(c *cobra.Command, o statsOptions) error {
	if o.interval < 100*time.Millisecond {
		return usageErrorf("bad --interval %v: want 100ms or more", o.interval)
	}
	if c.Flags().Changed("interval") && !o.watch {
		return usageErrorf("--interval applies only with --watch")
	}
	s, err := a.open(c.Context(), false)
	if err != nil {
		return err
	}
	defer s.Close()

	read := func() (statsJSON, error) {
		// Read the names first: a VIP added meanwhile shows as an index
		// until the next read.
		sn, err := takeSnapshot(s, false)
		if err != nil {
			return statsJSON{}, err
		}
		st, err := s.b.Stats()
		if err != nil {
			return statsJSON{}, fmt.Errorf("read counters: %w", err)
		}
		return sn.statsJSON(s.iface, st), nil
	}
	print := func(j statsJSON) error {
		if o.json {
			if o.watch {
				return writeJSONLine(c.OutOrStdout(), j)
			}
			return writeJSON(c.OutOrStdout(), j)
		}
		return printStats(c.OutOrStdout(), j)
	}

	prev, err := read()
	if err != nil {
		return err
	}
	if err := print(prev); err != nil || !o.watch {
		return err
	}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-c.Context().Done():
			return nil
		case <-t.C:
		}
		cur, err := read()
		if err != nil {
			return err
		}
		withRates(&cur, prev)
		if err := print(cur); err != nil {
			return err
		}
		prev = cur
	}
}

// statsJSON names the counters of st.
func (sn *snapshot) statsJSON(iface string, st loader.Stats) statsJSON {
	j := statsJSON{
		Interface: iface, Time: time.Now().UTC(),
		Reasons: map[string]uint64{}, Events: map[string]uint64{},
		VIPs: []vipStatsJSON{}, Backends: []backendStatsJSON{},
	}
	for r, n := range st.Reasons {
		j.Reasons[r.String()] = n
	}
	for e, n := range st.Events {
		j.Events[e.String()] = n
	}
	for _, idx := range sortedKeys(st.VIPs) {
		cnt := st.VIPs[idx]
		j.VIPs = append(j.VIPs, vipStatsJSON{VIP: sn.vipName(idx), Index: idx, Packets: cnt.Packets, Bytes: cnt.Bytes})
	}
	for _, id := range sortedKeys(st.Backends) {
		cnt := st.Backends[id]
		b := backendStatsJSON{ID: id, Packets: cnt.Packets, Bytes: cnt.Bytes}
		if be, ok := sn.byID[id]; ok {
			b.VIP, b.Address = sn.vipName(be.VIPIndex), be.Addr.String()
		}
		j.Backends = append(j.Backends, b)
	}
	return j
}

// withRates fills cur's rates from the counters of prev. A counter that
// went down was reset (its VIP or backend deleted and re-added): its rate
// counts from zero.
func withRates(cur *statsJSON, prev statsJSON) {
	secs := cur.Time.Sub(prev.Time).Seconds()
	if secs <= 0 {
		return
	}
	rate := func(now, before uint64) float64 {
		if now < before {
			before = 0
		}
		return float64(now-before) / secs
	}
	ptr := func(f float64) *float64 { return &f }
	cur.IntervalSeconds = secs
	cur.ReasonRates = map[string]float64{}
	for k, n := range cur.Reasons {
		cur.ReasonRates[k] = rate(n, prev.Reasons[k])
	}
	cur.EventRates = map[string]float64{}
	for k, n := range cur.Events {
		cur.EventRates[k] = rate(n, prev.Events[k])
	}
	pv := map[string]vipStatsJSON{}
	for _, v := range prev.VIPs {
		pv[v.VIP] = v
	}
	for i, v := range cur.VIPs {
		p := pv[v.VIP]
		cur.VIPs[i].PacketsPerSecond = ptr(rate(v.Packets, p.Packets))
		cur.VIPs[i].BytesPerSecond = ptr(rate(v.Bytes, p.Bytes))
	}
	pb := map[uint32]backendStatsJSON{}
	for _, b := range prev.Backends {
		pb[b.ID] = b
	}
	for i, b := range cur.Backends {
		p := pb[b.ID]
		if p.Address != b.Address {
			p = backendStatsJSON{} // the slot changed hands
		}
		cur.Backends[i].PacketsPerSecond = ptr(rate(b.Packets, p.Packets))
		cur.Backends[i].BytesPerSecond = ptr(rate(b.Bytes, p.Bytes))
	}
}

// printStats prints counters as tables, reasons and events in their enum
// order, with rates when it has them.
func printStats(out io.Writer, j statsJSON) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	rated := j.ReasonRates != nil
	fmt.Fprintf(w, "%s  %s", j.Interface, j.Time.Local().Format(time.DateTime))
	if rated {
		fmt.Fprintf(w, "  (rates over %.1fs)", j.IntervalSeconds)
	}
	fmt.Fprintf(w, "\n\n")
	row := func(name string, n uint64, r float64) {
		if rated {
			fmt.Fprintf(w, "%s\t%d\t%.1f/s\t\n", name, n, r)
		} else {
			fmt.Fprintf(w, "%s\t%d\t\n", name, n)
		}
	}
	fmt.Fprintf(w, "REASON\tPACKETS\t\n")
	for r := range loader.NumReasons {
		if loader.Reason(r).DecapOnly() {
			continue // the balancer never counts them (--json has every reason)
		}
		name := loader.Reason(r).String()
		row(name, j.Reasons[name], j.ReasonRates[name])
	}
	fmt.Fprintf(w, "\nEVENT\tCOUNT\t\n")
	for e := range loader.NumEvents {
		name := loader.Event(e).String()
		row(name, j.Events[name], j.EventRates[name])
	}
	fmt.Fprintf(w, "\nVIP\tPACKETS\tBYTES\t")
	if rated {
		fmt.Fprintf(w, "PKT/S\tBYTES/S\t")
	}
	fmt.Fprintln(w)
	for _, v := range j.VIPs {
		fmt.Fprintf(w, "%s\t%d\t%d\t", v.VIP, v.Packets, v.Bytes)
		if v.PacketsPerSecond != nil {
			fmt.Fprintf(w, "%.1f\t%.1f\t", *v.PacketsPerSecond, *v.BytesPerSecond)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nBACKEND\tVIP\tPACKETS\tBYTES\t")
	if rated {
		fmt.Fprintf(w, "PKT/S\tBYTES/S\t")
	}
	fmt.Fprintln(w)
	for _, b := range j.Backends {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t", b.Address, b.VIP, b.Packets, b.Bytes)
		if b.PacketsPerSecond != nil {
			fmt.Fprintf(w, "%.1f\t%.1f\t", *b.PacketsPerSecond, *b.BytesPerSecond)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	return w.Flush()
}
