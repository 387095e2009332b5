package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/vrrp"
)

// TestDaemonRunsVRRP: the configuration's VRRP instance runs in the
// daemon: alone on its link it becomes master and puts the VIP on the
// interface, its track_services weight follows the service's backends as
// the health checks see them, `status` reports it, and a stop releases the
// address.
func TestDaemonRunsVRRP(t *testing.T) {
	b := loadBalancer(t)
	env := netns.New(t)
	dns, pns := env.NS("d"), env.NS("p")
	dl, _ := env.Veth(dns, "d0", pns, "p0")
	dns.AddAddr(dl, netip.MustParsePrefix("198.18.0.10/24"))
	servers := healthyServers(t, dns, "198.18.0.21", "198.18.0.22")
	dirs := newDirs(t)
	dirs.write(t, fmt.Sprintf(`director:
  interface: %[1]s
  source_address: 198.18.0.10
  api_socket: %[2]s
  state_dir: %[3]s
services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
    health_check:
      type: http
      port: 8080
      interval: 50ms
      timeout: 40ms
      rise: 1
      fall: 1
vrrp:
  instances:
    - name: VI_1
      interface: %[1]s
      virtual_router_id: 51
      priority: 150
      version: 3
      advert_interval: 100ms
      virtual_addresses: [198.18.1.100/32]
      track_services:
        - service: web
          weight: -50
`, dl, dirs.socket, dirs.state))
	r := start(t, withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(b), InNS: dns.Do}), dirs.socket)

	instance := func() api.VRRPInstance {
		t.Helper()
		st := mustStatus(t, r.client)
		if len(st.VRRP) != 1 {
			t.Fatalf("status lists %d VRRP instances, want 1", len(st.VRRP))
		}
		return st.VRRP[0]
	}
	hasVIP := func() bool {
		addrs, err := dns.Netlink().AddrList(dns.Link(dl), netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IP.String() == "198.18.1.100" {
				return true
			}
		}
		return false
	}
	waitFor(t, 5*time.Second, "VI_1 master", func() bool { return instance().State == "MASTER" })
	waitFor(t, 5*time.Second, "VIP on the interface", hasVIP)
	if in := instance(); in.EffectivePriority != 150 || in.VRID != 51 || in.Interface != dl || in.Version != 3 {
		t.Errorf("instance %+v, want VRRPv3 VRID 51 on %s at priority 150", in, dl)
	}
	// A master at 100ms advertises: the counters and the transitions
	// from INIT through BACKUP to MASTER are in the status and the
	// metrics.
	waitFor(t, 5*time.Second, "adverts sent", func() bool { return instance().Counters.AdvertsSent >= 3 })
	in := instance()
	var path []string
	for _, tr := range in.Transitions {
		if tr.At.IsZero() || tr.Cause == "" {
			t.Errorf("transition %+v lacks its time or cause", tr)
		}
		path = append(path, tr.From+">"+tr.To)
	}
	if want, got := "INIT>BACKUP,BACKUP>MASTER", strings.Join(path, ","); want != got {
		t.Errorf("transitions %s, want %s", got, want)
	}
	if want, got := uint64(len(in.Transitions)), in.Counters.Transitions; want != got {
		t.Errorf("transitions counter %d, want %d (one per listed transition)", got, want)
	}
	vi := map[string]string{"instance": "VI_1", "interface": dl, "vrid": "51"}
	if got := metricValue(t, r.d, "xdplb_vrrp_state", map[string]string{"instance": "VI_1", "state": "master"}); got != 1 {
		t.Errorf("xdplb_vrrp_state{state=master} = %v, want 1", got)
	}
	if got := metricValue(t, r.d, "xdplb_vrrp_state", map[string]string{"instance": "VI_1", "state": "backup"}); got != 0 {
		t.Errorf("xdplb_vrrp_state{state=backup} = %v, want 0", got)
	}
	if got := metricValue(t, r.d, "xdplb_vrrp_adverts_sent_total", vi); got < 3 {
		t.Errorf("xdplb_vrrp_adverts_sent_total = %v, want at least 3", got)
	}
	if got := metricValue(t, r.d, "xdplb_vrrp_transitions_total", vi); got != 2 {
		t.Errorf("xdplb_vrrp_transitions_total = %v, want 2", got)
	}
	// Every reason's series exists before its first drop.
	if got := metricValue(t, r.d, "xdplb_vrrp_drops_total", map[string]string{"instance": "VI_1", "reason": "checksum"}); got != 0 {
		t.Errorf("xdplb_vrrp_drops_total{reason=checksum} = %v, want 0", got)
	}

	// Every backend of web fails: the tracked service lowers the priority.
	servers["198.18.0.21"].status.Store(503)
	servers["198.18.0.22"].status.Store(503)
	waitFor(t, 5*time.Second, "priority lowered by the starved service", func() bool { return instance().EffectivePriority == 100 })
	servers["198.18.0.22"].status.Store(200)
	waitFor(t, 5*time.Second, "priority back", func() bool { return instance().EffectivePriority == 150 })

	// A reload that changes the instance restarts it with the new
	// settings.
	body, err := os.ReadFile(dirs.config)
	if err != nil {
		t.Fatal(err)
	}
	dirs.write(t, strings.Replace(string(body), "priority: 150", "priority: 120", 1))
	if _, err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "restarted instance master at 120", func() bool {
		in := instance()
		return in.State == "MASTER" && in.Priority == 120 && in.EffectivePriority == 120
	})

	// A graceful stop hands over: the address goes.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if hasVIP() {
		t.Error("VIP still on the interface after the daemon stopped")
	}
}

// TestNotifyTimeoutKillsWhatTheCommandStarted: a notify command that
// outlives its timeout is killed with everything it started, so a script
// that left a process in the background leaves nothing behind.
func TestNotifyTimeoutKillsWhatTheCommandStarted(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/child"
	done := dir + "/done"
	script := fmt.Sprintf("sleep 60 & echo $! > %s; sleep 60; touch %s", pidFile, done)
	v := &vrrpRunner{
		log:           slog.New(slog.DiscardHandler),
		notify:        map[string]map[vrrp.State][]string{"vi": {vrrp.Master: {"/bin/sh", "-c", script}}},
		inNS:          func(fn func() error) error { return fn() },
		notifyTimeout: 300 * time.Millisecond,
	}
	start := time.Now()
	v.changed(vrrp.Change{Instance: "vi", StateChange: vrrp.StateChange{To: vrrp.Master}})
	v.wg.Wait()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("notify returned after %v, want about the 300ms timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script did not start its child: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(2 * time.Second)
	for {
		// Gone, or a zombie waiting for whoever adopted it.
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the notify script's background child %s still runs after the timeout: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(done); err == nil {
		t.Error("the script ran to its end; it should have been killed at the timeout")
	}
}
