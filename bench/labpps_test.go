package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

// TestPPSRunBalance proves a labpps run fails when frames go missing
// without a counter that says where, and passes when every frame is
// accounted for.
func TestPPSRunBalance(t *testing.T) {
	dr := ppsTarget{name: "dr/web-dr", tx: loader.ReasonTxDR}
	direct := ppsTarget{name: "direct/be1 (floor)"}
	tests := []struct {
		name    string
		target  ppsTarget
		run     ppsRun
		wantErr string
	}{
		{name: "all forwarded and delivered", target: dr,
			run: ppsRun{generated: 100, offered: 100, forwardedAll: 100, delivered: 100}},
		{name: "dropped by reason", target: dr,
			run: ppsRun{generated: 100, offered: 100, forwardedAll: 90, delivered: 90, xdplbDrops: 10}},
		{name: "lost before the director, counted", target: dr,
			run: ppsRun{generated: 100, offered: 100, forwardedAll: 80, delivered: 80, kernelDrops: 40}},
		{name: "lost after the director, counted", target: dr,
			run: ppsRun{generated: 100, offered: 100, forwardedAll: 100, delivered: 95, kernelDrops: 5}},
		{name: "lost before the director, uncounted", target: dr,
			run:     ppsRun{generated: 100, offered: 100, forwardedAll: 80, delivered: 80, kernelDrops: 10},
			wantErr: "director forwarded 80"},
		{name: "lost after the director, uncounted", target: dr,
			run:     ppsRun{generated: 100, offered: 100, forwardedAll: 100, delivered: 90},
			wantErr: "10 frames lost"},
		{name: "delivered more than forwarded", target: dr,
			run:     ppsRun{generated: 100, offered: 100, forwardedAll: 90, delivered: 100, kernelDrops: 10},
			wantErr: "backends received 100"},
		{name: "forwarded by the other method", target: dr,
			run:     ppsRun{generated: 100, offered: 100, forwardedAll: 100, delivered: 100, otherTx: 1},
			wantErr: "another method"},
		{name: "generator lost frames uncounted", target: dr,
			run:     ppsRun{generated: 100, offered: 90, forwardedAll: 90, delivered: 90},
			wantErr: "offered 90 of 100"},
		{name: "direct delivered", target: direct,
			run: ppsRun{generated: 100, offered: 100, delivered: 100}},
		{name: "direct seen by the director", target: direct,
			run:     ppsRun{generated: 100, offered: 100, delivered: 100, forwardedAll: 3},
			wantErr: "director forwarded 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run.balance(tt.target)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("balance = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("balance = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseNFTCounter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "one counter", in: `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, ` +
			`{"counter": {"family": "ip", "name": "gen", "table": "xdplb_bench", "handle": 1, "packets": 1048576, "bytes": 56623104}}]}`,
			want: 1048576},
		{name: "zero", in: `{"nftables": [{"counter": {"name": "gen", "packets": 0, "bytes": 0}}]}`, want: 0},
		{name: "no counter", in: `{"nftables": [{"metainfo": {}}]}`, wantErr: true},
		{name: "two counters", in: `{"nftables": [{"counter": {"packets": 1}}, {"counter": {"packets": 2}}]}`, wantErr: true},
		{name: "not json", in: `table ip xdplb_bench`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNFTCounter([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseNFTCounter = %d, %v, want error %v", got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseNFTCounter = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParsePerCPU(t *testing.T) {
	stat := "cpu  10 0 20 300 0 1 9 5 0 0\n" +
		"cpu0 4 0 8 150 0 1 2 3 0 0\n" +
		"cpu1 6 1 12 150 2 0 7 2 0 0\n" +
		"intr 12345\n"
	got, err := parsePerCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	want := []cpuTimes{
		{busy: 4 + 8 + 1 + 2, softirq: 2, total: 4 + 8 + 150 + 1 + 2 + 3},
		{busy: 6 + 1 + 12 + 7, softirq: 7, total: 6 + 1 + 12 + 150 + 2 + 7 + 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d CPUs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cpu%d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := parsePerCPU("cpu  1 2 3 4 5 6 7 8\n"); err == nil {
		t.Error("parsePerCPU without cpuN lines: want an error")
	}
	if _, err := parsePerCPU("cpuX 1 2 3 4 5 6 7 8\n"); err == nil {
		t.Error("parsePerCPU of a bad CPU number: want an error")
	}
}

// TestLabPPSSection runs the labpps section for one round and checks what
// a reader relies on: the floor and both VIPs, figures above zero, and the
// counters behind them adding up.
func TestLabPPSSection(t *testing.T) {
	testenv.Privileged(t)
	testenv.Command(t, "nft")
	testenv.Command(t, "go")
	cfg := Config{LiveRounds: 1, LiveBatch: 64, Attempts: 4}
	rep, err := labPPSSection{}.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"direct/be1 (floor)", "dr/web-dr", "tun/web-tun"}
	if len(rep.Results) != len(wantNames) {
		t.Fatalf("got %d results, want %v", len(rep.Results), wantNames)
	}
	for i, res := range rep.Results {
		if res.Name != wantNames[i] {
			t.Errorf("result %d = %q, want %q", i, res.Name, wantNames[i])
		}
		if res.Value <= 0 || res.Metrics["cpu_ns_per_packet"] <= 0 {
			t.Errorf("%s: %v pps, %v cpu ns/pkt, want both above 0", res.Name, res.Value, res.Metrics["cpu_ns_per_packet"])
		}
		checked := map[string]string{}
		for _, c := range res.Checked {
			k, v, _ := strings.Cut(c, "=")
			checked[k] = v
		}
		if got, want := checked["generated"], "1048576"; got != want {
			t.Errorf("%s: generated=%s, want %s", res.Name, got, want)
		}
		if checked["delivered"] == "0" || checked["delivered"] == "" {
			t.Errorf("%s: delivered=%q, want frames at the backends", res.Name, checked["delivered"])
		}
		wantFwd := checked["forwarded"] != "0"
		if got := i > 0; wantFwd != got {
			t.Errorf("%s: forwarded=%s, want frames forwarded %v", res.Name, checked["forwarded"], got)
		}
	}
}
