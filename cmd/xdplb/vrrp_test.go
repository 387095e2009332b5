package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
)

func TestVRRPStatusOutput(t *testing.T) {
	now := time.Now()
	f := &fakeDaemon{status: api.Status{
		Interface: "eth0", ConfigFile: "/etc/xdplb/xdplb.yaml",
		VRRP: []api.VRRPInstance{{
			Name: "VI_1", Interface: "eth0", VRID: 51, Version: 3, State: "BACKUP",
			Priority: 150, EffectivePriority: 100, Master: "198.18.0.11",
			Addresses:  []string{"198.18.1.100/32", "198.18.1.101/32"},
			LastAdvert: now.Add(-100 * time.Millisecond),
			Counters: api.VRRPCounters{
				AdvertsSent: 42, AdvertsReceived: 1234, Priority0Received: 1, Transitions: 20,
				Drops: map[string]uint64{"ttl": 2, "checksum": 3, "auth_password": 0},
			},
			Transitions: []api.VRRPTransition{
				{At: now.Add(-10 * time.Minute), From: "BACKUP", To: "MASTER", Cause: "master_down"},
				{At: now.Add(-1500 * time.Millisecond), From: "MASTER", To: "BACKUP", Cause: "higher_priority"},
			},
		}, {
			Name: "VI_2", Interface: "eth1", VRID: 52, Version: 2, State: "FAULT",
			Priority: 100, EffectivePriority: 100, Group: "G1", Faults: []string{"link:eth1"},
			Addresses: []string{"198.18.2.100/32"},
			Counters:  api.VRRPCounters{Drops: map[string]uint64{}},
		}},
		VRRPLinks: []api.VRRPLink{{Interface: "eth0", Received: 1300, ReceiveErrors: 1, Drops: map[string]uint64{"unknown_vrid": 60}}},
	}}
	sock := serveFake(t, f)
	out, _, err := run(t, allCaps, "vrrp", "status", "--socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"VI_1  eth0  VRID 51  VRRPv3  BACKUP\n",
		"  priority 100 (configured 150), master 198.18.0.11\n",
		"  addresses 198.18.1.100/32, 198.18.1.101/32\n",
		"  adverts sent 42, received 1234 (last ",
		"; priority 0 sent 0, received 1; send errors 0\n",
		"  dropped: checksum 3, ttl 2\n",
		"  transitions: 20, the last 2\n",
		"(10m0s ago)  BACKUP -> MASTER  master_down\n",
		" ago)  MASTER -> BACKUP  higher_priority\n",
		"VI_2  eth1  VRID 52  VRRPv2  FAULT\n",
		"  priority 100, master -\n",
		"  sync group G1\n",
		"  faults: link:eth1\n",
		"  adverts sent 0, received 0 (last never)",
		"  dropped: none\n",
		"  transitions: 0\n",
		"eth0: 1300 VRRP messages received, 1 receive errors; unclaimed and dropped: unknown_vrid 60\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vrrp status output lacks %q:\n%s", want, out)
		}
	}
	// The transitions' absolute times are printed to the millisecond.
	if want := now.Add(-1500 * time.Millisecond).Format("2006-01-02 15:04:05.000"); !strings.Contains(out, want) {
		t.Errorf("vrrp status output lacks the transition time %s:\n%s", want, out)
	}

	out, _, err = run(t, allCaps, "vrrp", "status", "--socket", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got vrrpStatus
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(got.Instances) != 2 || len(got.Links) != 1 {
		t.Fatalf("--json decoded to %+v", got)
	}
	in := got.Instances[0]
	if want, got := uint64(3), in.Counters.Drops["checksum"]; want != got {
		t.Errorf("--json checksum drops = %d, want %d", got, want)
	}
	if len(in.Transitions) != 2 || in.Transitions[1].Cause != "higher_priority" || !in.Transitions[1].At.Equal(now.Add(-1500*time.Millisecond)) {
		t.Errorf("--json transitions = %+v", in.Transitions)
	}
	if in.Master != "198.18.0.11" || in.Priority != 150 || in.EffectivePriority != 100 {
		t.Errorf("--json instance = %+v", in)
	}
}

// TestVRRPAges: ages are to the millisecond under a minute, where VRRP's
// timings live, and to the second above.
func TestVRRPAges(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	vs := vrrpStatus{Instances: []api.VRRPInstance{{
		Name: "VI_1", Interface: "eth0", VRID: 51, Version: 3, State: "MASTER", Priority: 255, EffectivePriority: 255,
		LastAdvert: now.Add(-110 * time.Millisecond),
		Counters:   api.VRRPCounters{Transitions: 2},
		Transitions: []api.VRRPTransition{
			{At: now.Add(-2*time.Minute - 400*time.Millisecond), From: "INIT", To: "BACKUP", Cause: "startup"},
			{At: now.Add(-1520 * time.Millisecond), From: "BACKUP", To: "MASTER", Cause: "master_down"},
		},
	}}}
	var b strings.Builder
	if err := writeVRRPStatus(&b, vs, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"(last 110ms ago)",
		"  transitions: 2\n",
		"    2026-11-23 13:57:59.600 (2m0s ago)  INIT -> BACKUP  startup\n",
		"    2026-11-23 13:59:58.480 (1.52s ago)  BACKUP -> MASTER  master_down\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestVRRPStatusWithoutInstances(t *testing.T) {
	sock := serveFake(t, &fakeDaemon{status: api.Status{ConfigFile: "/etc/xdplb/xdplb.yaml"}})
	out, _, err := run(t, allCaps, "vrrp", "status", "--socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	if want := "the daemon runs no VRRP instances: /etc/xdplb/xdplb.yaml has no vrrp: instances\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	out, _, err = run(t, allCaps, "vrrp", "status", "--socket", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"instances\": [],\n  \"links\": []\n}\n"; out != want {
		t.Errorf("--json output %q, want %q", out, want)
	}
}

func TestVRRPStatusWithoutDaemon(t *testing.T) {
	_, _, err := run(t, allCaps, "vrrp", "status", "--socket", t.TempDir()+"/none.sock")
	if !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "xdplb run") {
		t.Errorf("err = %v, want ErrNotRunning saying to start 'xdplb run'", err)
	}
	_, _, err = run(t, allCaps, "vrrp", "status", "extra")
	if want, got := 2, exitCode(err); want != got {
		t.Errorf("exit code for an extra argument = %d, want %d (%v)", got, want, err)
	}
}
