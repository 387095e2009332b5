package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Schema names the layout of the --json output. It changes only when a
// field is removed or changes meaning; fields may be added.
const Schema = "xdplb-bench/1"

// Section is one part of the report: the data plane through
// BPF_PROG_TEST_RUN, live frames, and later Maglev build times,
// control-plane figures and VRRP failover.
type Section interface {
	// Name is the section's stable key: lower case, no spaces.
	Name() string
	// Run measures and returns the section's report. A failed self-check
	// is an error: no figure is reported that the counters do not back.
	Run(ctx context.Context, cfg Config, log *slog.Logger) (SectionReport, error)
}

// Config holds the settings every section reads.
type Config struct {
	Repeat     uint32   // runs per BPF_PROG_TEST_RUN
	Rounds     int      // measurements per figure; the median is reported
	Attempts   int      // tries per measurement while the floor moves or frames are lost
	Cases      []string // globs selecting cases by name; empty selects all
	Flows      uint32   // flows in the "est-many" set
	LiveRepeat uint32   // frames per live-frames run
	LiveRounds int      // live measurements per figure
	LiveBatch  uint32   // live-frames batch size
}

// selected reports whether the case called name was asked for.
func (c Config) selected(name string) bool {
	if len(c.Cases) == 0 {
		return true
	}
	for _, pat := range c.Cases {
		if globMatch(pat, name) {
			return true
		}
	}
	return false
}

// Report is the whole output.
type Report struct {
	Schema   string          `json:"schema"`
	Machine  Machine         `json:"machine"`
	Config   Config          `json:"config"`
	Sections []SectionReport `json:"sections"`
}

// Machine describes where the figures were taken.
type Machine struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Go     string `json:"go"`
}

// SectionReport is one section's figures.
type SectionReport struct {
	Name string `json:"name"`
	// Method says in a few sentences how the figures were taken.
	Method string `json:"method"`
	// Columns lists, in order, the Metrics keys the human table shows
	// after the value, with their headers.
	Columns []Column `json:"columns"`
	Results []Result `json:"results"`
}

// Column is one extra column of the human table.
type Column struct {
	Key    string `json:"key"`
	Header string `json:"header"`
}

// Result is one figure: the median over rounds and its spread.
type Result struct {
	// Name identifies the case within its section, e.g. "dr/100/new".
	Name string `json:"name"`
	// Unit of Value, Min and Max: "ns/packet", "pps", "ms", ...
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Rounds int     `json:"rounds"`
	// RatioToFloor compares the case with the section's floor (1 for the
	// floor itself); absent where no floor applies.
	RatioToFloor *float64 `json:"ratio_to_floor,omitempty"`
	// Target is the bound on RatioToFloor this case must meet, if any.
	Target *Target `json:"target,omitempty"`
	// Metrics holds further named figures (medians); each section
	// documents its keys.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Checked lists the counters that proved each run did the work, as
	// "name=value".
	Checked []string `json:"checked,omitempty"`
}

// Target is a bound on a ratio to the floor.
type Target struct {
	MaxRatio float64 `json:"max_ratio"`
	Met      bool    `json:"met"`
}

// Spread returns (max-min)/value, the relative spread over rounds.
func (r Result) Spread() float64 {
	if r.Value == 0 {
		return 0
	}
	return (r.Max - r.Min) / r.Value
}

// newResult summarises samples as a Result.
func newResult(name, unit string, samples []float64) Result {
	return Result{
		Name:   name,
		Unit:   unit,
		Value:  median(samples),
		Min:    slices.Min(samples),
		Max:    slices.Max(samples),
		Rounds: len(samples),
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count). xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pick returns f of every element of xs, in order.
func pick[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// writeJSON writes r as indented JSON.
func writeJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeTable writes r for people: one table per section.
func writeTable(w io.Writer, r Report) error {
	fmt.Fprintf(w, "xdplb benchmark: Linux %s, %d CPUs (%s), %s\n", r.Machine.Kernel, r.Machine.CPUs, r.Machine.Model, r.Machine.Go)
	for _, s := range r.Sections {
		fmt.Fprintf(w, "\n== %s\n", s.Name)
		for _, line := range wrap(s.Method, 100) {
			fmt.Fprintf(w, "   %s\n", line)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		unit := ""
		if len(s.Results) > 0 {
			unit = s.Results[0].Unit
		}
		hdr := []string{"case", unit, "spread"}
		for _, c := range s.Columns {
			hdr = append(hdr, c.Header)
		}
		hdr = append(hdr, "x floor", "target", "")
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, res := range s.Results {
			row := []string{res.Name, fmtFigure(res.Value), fmt.Sprintf("%.1f%%", 100*res.Spread())}
			for _, c := range s.Columns {
				v, ok := res.Metrics[c.Key]
				if !ok {
					row = append(row, "-")
					continue
				}
				row = append(row, fmtFigure(v))
			}
			ratio, target, verdict := "-", "", ""
			if res.RatioToFloor != nil {
				ratio = fmt.Sprintf("%.2f", *res.RatioToFloor)
			}
			if res.Target != nil {
				target = fmt.Sprintf("<= %.1fx", res.Target.MaxRatio)
				verdict = "met"
				if !res.Target.Met {
					verdict = "MISSED"
				}
			}
			row = append(row, ratio, target, verdict)
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

// fmtFigure prints a figure with about three significant digits.
func fmtFigure(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
