package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

func sampleSnapshot() Snapshot {
	return Snapshot{
		Services: []Service{{
			Name: "web", VIP: "198.18.1.100:80/tcp", ActiveBackends: 1, Packets: 30, Bytes: 3000,
			Backends: []Backend{
				{Address: "198.18.0.21", State: "active", Healthy: true, Weight: 1, Packets: 20, Bytes: 2000},
				{Address: "198.18.0.22", State: "down", Healthy: false, Weight: 2, Packets: 10, Bytes: 1000},
			},
		}, {
			Name: "db", VIP: "198.18.1.101:3306/tcp", ActiveBackends: 0,
		}},
		Reasons:      map[string]uint64{"pass_not_vip": 7, "tx_dr": 30, "drop_no_backend": 4},
		FlowEvents:   map[string]uint64{"flow_new": 3, "flow_hit": 27},
		FlowEntries:  3,
		FlowCapacity: 65536,
		Memlock:      map[string]uint64{"flows": 4096, "vips": 512},
		VRRP: []VRRPInstance{{
			Name: "VI_1", Interface: "eth0", VRID: 51, State: "master", Priority: 100,
			AdvertsSent: 120, AdvertsReceived: 3, Transitions: 2,
			Drops: map[string]uint64{"checksum": 2, "ttl": 0},
		}},
		VRRPLinks: []VRRPLink{{Interface: "eth0", Drops: map[string]uint64{"unknown_vrid": 5}}},
	}
}

func newTest(t *testing.T, snap func() (Snapshot, error)) *Metrics {
	t.Helper()
	return New(SourceFunc(snap), BuildInfo{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26"})
}

// TestLint runs promlint over everything the registry exports, the Go and
// process collectors included, with every metric family populated.
func TestLint(t *testing.T) {
	m := newTest(t, func() (Snapshot, error) { return sampleSnapshot(), nil })
	m.ObserveCheck("web", "http", 3*time.Millisecond, "")
	m.ObserveCheck("web", "http", 500*time.Millisecond, "timeout")
	m.ObserveTransition("web", false)
	m.ObserveDecisionToMap(120 * time.Microsecond)
	m.ObserveReload(true, time.Unix(1700000000, 0))
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Errorf("gathered %d series, want the data plane's, health's and the runtime's (at least 40)", n)
	}
}

func TestDataplaneValues(t *testing.T) {
	m := newTest(t, func() (Snapshot, error) { return sampleSnapshot(), nil })
	tests := []struct {
		name string
		want string
	}{
		{"xdplb_backend_state", `
# HELP xdplb_backend_state Data-plane state of a backend: 1 for the current one of active, draining and down.
# TYPE xdplb_backend_state gauge
xdplb_backend_state{backend="198.18.0.21",service="web",state="active",vip="198.18.1.100:80/tcp"} 1
xdplb_backend_state{backend="198.18.0.21",service="web",state="down",vip="198.18.1.100:80/tcp"} 0
xdplb_backend_state{backend="198.18.0.21",service="web",state="draining",vip="198.18.1.100:80/tcp"} 0
xdplb_backend_state{backend="198.18.0.22",service="web",state="active",vip="198.18.1.100:80/tcp"} 0
xdplb_backend_state{backend="198.18.0.22",service="web",state="down",vip="198.18.1.100:80/tcp"} 1
xdplb_backend_state{backend="198.18.0.22",service="web",state="draining",vip="198.18.1.100:80/tcp"} 0
`},
		{"xdplb_backend_up", `
# HELP xdplb_backend_up Health-check verdict of a backend: 1 up, 0 down (1 for an unchecked service).
# TYPE xdplb_backend_up gauge
xdplb_backend_up{backend="198.18.0.21",service="web",vip="198.18.1.100:80/tcp"} 1
xdplb_backend_up{backend="198.18.0.22",service="web",vip="198.18.1.100:80/tcp"} 0
`},
		{"xdplb_backend_packets_total", `
# HELP xdplb_backend_packets_total Packets the data plane forwarded to a backend.
# TYPE xdplb_backend_packets_total counter
xdplb_backend_packets_total{backend="198.18.0.21",service="web",vip="198.18.1.100:80/tcp"} 20
xdplb_backend_packets_total{backend="198.18.0.22",service="web",vip="198.18.1.100:80/tcp"} 10
`},
		{"xdplb_vip_bytes_total", `
# HELP xdplb_vip_bytes_total Bytes of the frames the data plane forwarded for a VIP, as received.
# TYPE xdplb_vip_bytes_total counter
xdplb_vip_bytes_total{service="db",vip="198.18.1.101:3306/tcp"} 0
xdplb_vip_bytes_total{service="web",vip="198.18.1.100:80/tcp"} 3000
`},
		{"xdplb_service_active_backends", `
# HELP xdplb_service_active_backends Backends taking new flows; at 0 the data plane drops the VIP's packets (reason drop_no_backend).
# TYPE xdplb_service_active_backends gauge
xdplb_service_active_backends{service="db",vip="198.18.1.101:3306/tcp"} 0
xdplb_service_active_backends{service="web",vip="198.18.1.100:80/tcp"} 1
`},
		{"xdplb_packets_total", `
# HELP xdplb_packets_total Packets the balancer program handled, by action (pass, tx, drop) and reason, summed over CPUs.
# TYPE xdplb_packets_total counter
xdplb_packets_total{action="drop",reason="drop_no_backend"} 4
xdplb_packets_total{action="pass",reason="pass_not_vip"} 7
xdplb_packets_total{action="tx",reason="tx_dr"} 30
`},
		{"xdplb_flow_table_entries", `
# HELP xdplb_flow_table_entries Entries in the flow table (established flows pinned to a backend).
# TYPE xdplb_flow_table_entries gauge
xdplb_flow_table_entries 3
`},
		{"xdplb_vrrp_state", `
# HELP xdplb_vrrp_state State of a VRRP instance: 1 for the current one of init, backup, master and fault.
# TYPE xdplb_vrrp_state gauge
xdplb_vrrp_state{instance="VI_1",interface="eth0",state="backup",vrid="51"} 0
xdplb_vrrp_state{instance="VI_1",interface="eth0",state="fault",vrid="51"} 0
xdplb_vrrp_state{instance="VI_1",interface="eth0",state="init",vrid="51"} 0
xdplb_vrrp_state{instance="VI_1",interface="eth0",state="master",vrid="51"} 1
`},
		{"xdplb_vrrp_priority", `
# HELP xdplb_vrrp_priority Priority a VRRP instance advertises, after its trackers' weights.
# TYPE xdplb_vrrp_priority gauge
xdplb_vrrp_priority{instance="VI_1",interface="eth0",vrid="51"} 100
`},
		{"xdplb_vrrp_transitions_total", `
# HELP xdplb_vrrp_transitions_total State changes of a VRRP instance.
# TYPE xdplb_vrrp_transitions_total counter
xdplb_vrrp_transitions_total{instance="VI_1",interface="eth0",vrid="51"} 2
`},
		{"xdplb_vrrp_adverts_sent_total", `
# HELP xdplb_vrrp_adverts_sent_total VRRP advertisements an instance sent, priority 0 included.
# TYPE xdplb_vrrp_adverts_sent_total counter
xdplb_vrrp_adverts_sent_total{instance="VI_1",interface="eth0",vrid="51"} 120
`},
		{"xdplb_vrrp_adverts_received_total", `
# HELP xdplb_vrrp_adverts_received_total Valid VRRP advertisements an instance received, priority 0 included.
# TYPE xdplb_vrrp_adverts_received_total counter
xdplb_vrrp_adverts_received_total{instance="VI_1",interface="eth0",vrid="51"} 3
`},
		{"xdplb_vrrp_drops_total", `
# HELP xdplb_vrrp_drops_total Received VRRP messages dropped, by reason; instance is empty for those no instance claimed (malformed, unknown VRID).
# TYPE xdplb_vrrp_drops_total counter
xdplb_vrrp_drops_total{instance="",interface="eth0",reason="unknown_vrid"} 5
xdplb_vrrp_drops_total{instance="VI_1",interface="eth0",reason="checksum"} 2
xdplb_vrrp_drops_total{instance="VI_1",interface="eth0",reason="ttl"} 0
`},
		{"xdplb_build_info", `
# HELP xdplb_build_info Always 1; the labels describe the running xdplb binary.
# TYPE xdplb_build_info gauge
xdplb_build_info{goversion="go1.26",revision="abc123",version="v1.2.3"} 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tt.want), tt.name); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	m := newTest(t, func() (Snapshot, error) { return Snapshot{}, nil })
	m.ObserveCheck("web", "http", 2*time.Millisecond, "")
	m.ObserveCheck("web", "http", 600*time.Millisecond, "timeout")
	m.ObserveCheck("web", "http", 1*time.Millisecond, "refused")
	m.ObserveCheck("web", "http", 1*time.Millisecond, "refused")
	m.ObserveTransition("web", false)
	m.ObserveReload(true, time.Unix(1700000000, 500e6))
	m.ObserveReload(false, time.Unix(1700000100, 0))

	want := `
# HELP xdplb_health_check_failures_total Failed health checks, by reason (timeout, refused, status, exit...).
# TYPE xdplb_health_check_failures_total counter
xdplb_health_check_failures_total{reason="refused",service="web"} 2
xdplb_health_check_failures_total{reason="timeout",service="web"} 1
# HELP xdplb_health_transitions_total Backend health changes decided by rise/fall, by the state entered (up or down).
# TYPE xdplb_health_transitions_total counter
xdplb_health_transitions_total{service="web",to="down"} 1
# HELP xdplb_config_reloads_total Configuration reloads, by result (success or failure); a refused file is a failure and changes nothing.
# TYPE xdplb_config_reloads_total counter
xdplb_config_reloads_total{result="failure"} 1
xdplb_config_reloads_total{result="success"} 1
# HELP xdplb_config_last_reload_successful 1 if the last reload was applied, 0 if it was refused.
# TYPE xdplb_config_last_reload_successful gauge
xdplb_config_last_reload_successful 0
# HELP xdplb_config_last_reload_success_timestamp_seconds When the configuration in force was loaded (start-up or last successful reload), as a Unix time.
# TYPE xdplb_config_last_reload_success_timestamp_seconds gauge
xdplb_config_last_reload_success_timestamp_seconds 1.7000000005e+09
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"xdplb_health_check_failures_total", "xdplb_health_transitions_total", "xdplb_config_reloads_total",
		"xdplb_config_last_reload_successful", "xdplb_config_last_reload_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	// One series per service and check type, whatever the outcome.
	if want, got := 1, testutil.CollectAndCount(m.checkDuration); want != got {
		t.Errorf("histogram series = %d, want %d", got, want)
	}
	// Four checks observed: the histogram counts them all, failed ones
	// included, and puts the 600ms one above 0.5s.
	b, err := testutil.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, "xdplb_health_check_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`xdplb_health_check_duration_seconds_count{service="web",type="http"} 4`,
		`xdplb_health_check_duration_seconds_bucket{service="web",type="http",le="0.5"} 3`,
		`xdplb_health_check_duration_seconds_bucket{service="web",type="http",le="1"} 4`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("histogram lacks %q:\n%s", line, b)
		}
	}
}

// TestSourceError: a snapshot that fails makes the scrape report the
// error instead of exporting zeros.
func TestSourceError(t *testing.T) {
	m := newTest(t, func() (Snapshot, error) { return Snapshot{}, errors.New("maps unreadable") })
	_, err := m.Registry().Gather()
	if err == nil || !strings.Contains(err.Error(), "maps unreadable") {
		t.Errorf("Gather error = %v, want the source's error", err)
	}
	// The handler still serves what it can.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "xdplb_build_info") {
		t.Errorf("handler output lacks build info:\n%.500s", body)
	}
}

func TestActionOf(t *testing.T) {
	for reason, want := range map[string]string{
		"pass_not_vip": "pass", "tx_tun": "tx", "drop_too_big": "drop", "decap_ok": "decap", "weird": "other",
	} {
		if got := actionOf(reason); got != want {
			t.Errorf("actionOf(%q) = %q, want %q", reason, got, want)
		}
	}
}
