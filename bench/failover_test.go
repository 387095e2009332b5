package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testenv"
)

// TestFailoverSection runs the failover section for one round of each case
// and checks what a reader of the report relies on: every case for both
// implementations, each figure next to its bound, within reach of it, and
// the counters that back it.
func TestFailoverSection(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "ip")
	testenv.Command(t, "sysctl")
	testenv.Command(t, "keepalived")
	rep, err := failoverSection{}.Run(context.Background(), Config{Rounds: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Result{}
	for _, r := range rep.Results {
		byName[r.Name] = r
	}
	for _, c := range foCases {
		for _, kind := range []string{"crash", "graceful"} {
			bound := c.mdi()
			if kind == "graceful" {
				bound = c.skew()
			}
			for _, impl := range []string{"xdplb", "keepalived"} {
				name := c.name + "/" + kind + "/" + impl
				r, ok := byName[name]
				if !ok {
					t.Errorf("no result for %s", name)
					continue
				}
				if r.Rounds != 1 || r.Unit != "ms" {
					t.Errorf("%s: %d rounds in %q, want 1 in ms", name, r.Rounds, r.Unit)
				}
				if got := r.Metrics["rfc_bound_ms"]; got != ms(bound) {
					t.Errorf("%s: RFC bound %vms, want %v", name, got, bound)
				}
				// The protocol never allows a takeover before its bound
				// after the last word; a loaded machine may add a second.
				after := time.Duration(r.Metrics["after_last_word_ms"] * float64(time.Millisecond))
				if after < bound-5*time.Millisecond || after > bound+time.Second {
					t.Errorf("%s: %v after the last word, want %v to %v", name, after, bound, bound+time.Second)
				}
				took := time.Duration(r.Value * float64(time.Millisecond))
				if took > bound+time.Second || took <= 0 {
					t.Errorf("%s: took %v, bound %v", name, took, bound)
				}
				if _, ok := r.Metrics["keepalived_ms"]; ok != (impl == "xdplb") {
					t.Errorf("%s: keepalived figure present %v, want it on xdplb's rows only", name, ok)
				}
				if !strings.Contains(strings.Join(r.Checked, " "), "=0") {
					t.Errorf("%s: checked %v, want zero drops or errors listed", name, r.Checked)
				}
			}
		}
	}
	var table, js bytes.Buffer
	full := Report{Schema: Schema, Sections: []SectionReport{rep}}
	if err := writeTable(&table, full); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&js, full); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) || !strings.Contains(table.String(), "v3-100ms/crash/xdplb") {
		t.Errorf("report:\n%s\n%s", table.String(), js.String())
	}
	t.Logf("\n%s", table.String())
}
