package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/internal/testenv"
	"github.com/xdplb/xdplb/loader"
)

// flipServer is an HTTP server whose /healthz answers with a status the
// test sets.
type flipServer struct {
	status atomic.Int32
}

func (s *flipServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(int(s.status.Load()))
}

// serveIn starts an HTTP server for h listening on addr inside ns.
func serveIn(t *testing.T, ns *netns.NS, addr string, h http.Handler) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// healthyServers gives ns each address on lo and a flipServer answering
// 200 on port 8080 there, and returns the servers by address.
func healthyServers(t *testing.T, ns *netns.NS, addrs ...string) map[string]*flipServer {
	t.Helper()
	servers := map[string]*flipServer{}
	for _, a := range addrs {
		ns.AddAddr("lo", netip.MustParsePrefix(a+"/32"))
		s := &flipServer{}
		s.status.Store(200)
		servers[a] = s
		serveIn(t, ns, a+":8080", s)
	}
	return servers
}

// waitFor polls cond every 5ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// mapState reads the state of a backend of vip from the real maps.
func mapState(t *testing.T, b *loader.Balancer, vip loader.VIP, addr string) loader.BackendState {
	t.Helper()
	e, err := b.LookupVIP(vip)
	if err != nil {
		return loader.StateUnused
	}
	all, err := b.Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range all {
		if be.VIPIndex == e.Index && be.Addr.String() == addr {
			return be.State
		}
	}
	return loader.StateUnused
}

// TestDaemonHealthDrivesMaps: HTTP checks against real servers, in a
// network namespace, drive the backend states in real BPF maps: a server
// answering 503 takes its backend down after fall checks (or draining with
// on_failure: drain), and back after rise checks.
func TestDaemonHealthDrivesMaps(t *testing.T) {
	b := loadBalancer(t)
	env := netns.New(t)
	ns := env.NS("hc")
	servers := healthyServers(t, ns, "198.18.0.21", "198.18.0.22", "198.18.0.31", "198.18.0.32")
	dirs := newDirs(t)
	check := `    health_check:
      type: http
      port: 8080
      path: /healthz
      interval: 50ms
      timeout: 40ms
      rise: 2
      fall: 2
`
	dirs.write(t, dirs.director("")+`services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
`+check+`  - name: db
    vip: 198.18.1.101
    port: 3306
    forwarding: tun
    backends:
      - address: 198.18.0.31
      - address: 198.18.0.32
`+check+`      on_failure: drain
`)
	var logs logBuffer
	r := start(t, withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(b), InNS: ns.Do, Log: logs.logger()}), dirs.socket)
	for _, a := range []string{"198.18.0.21", "198.18.0.22"} {
		if st := mapState(t, b, webVIP, a); st != loader.StateActive {
			t.Fatalf("web %s starts %s, want active", a, st)
		}
	}

	servers["198.18.0.22"].status.Store(503)
	took := waitFor(t, 5*time.Second, "web .22 down", func() bool { return mapState(t, b, webVIP, "198.18.0.22") == loader.StateDown })
	t.Logf("503 to down in the maps: %v", took)
	if st := mapState(t, b, webVIP, "198.18.0.21"); st != loader.StateActive {
		t.Errorf("healthy .21 is %s", st)
	}
	st, err := r.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if be := backendOf(t, st, "web", "198.18.0.22"); be.Health != "down" || be.Reason != "health check failing" || !strings.Contains(be.LastCheckError, "503") {
		t.Errorf("status of the failed backend: %+v", be)
	}

	servers["198.18.0.22"].status.Store(200)
	waitFor(t, 5*time.Second, "web .22 back", func() bool { return mapState(t, b, webVIP, "198.18.0.22") == loader.StateActive })

	servers["198.18.0.31"].status.Store(500)
	waitFor(t, 5*time.Second, "db .31 draining", func() bool { return mapState(t, b, dbVIP, "198.18.0.31") == loader.StateDraining })

	// Every backend of web fails: loud, counted, and stated.
	servers["198.18.0.21"].status.Store(503)
	servers["198.18.0.22"].status.Store(503)
	waitFor(t, 5*time.Second, "web starved", func() bool {
		return mapState(t, b, webVIP, "198.18.0.21") == loader.StateDown && mapState(t, b, webVIP, "198.18.0.22") == loader.StateDown
	})
	waitFor(t, 5*time.Second, "starved service logged", func() bool {
		return strings.Contains(logs.String(), "service has no backend taking new flows")
	})
	st, err = r.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Name == "web" && (s.ActiveBackends != 0 || !strings.Contains(s.Dataplane, "drop_no_backend")) {
			t.Errorf("status of the starved service: %d active, %q", s.ActiveBackends, s.Dataplane)
		}
	}
	if len(st.Notes) == 0 || !strings.Contains(strings.Join(st.Notes, "\n"), "web") {
		t.Errorf("status notes %q do not mention the starved service", st.Notes)
	}
	if got := metricValue(t, r.d, "xdplb_service_active_backends", map[string]string{"service": "web"}); got != 0 {
		t.Errorf("xdplb_service_active_backends{web} = %v, want 0", got)
	}
	if got := metricValue(t, r.d, "xdplb_health_check_failures_total", map[string]string{"service": "web", "reason": "status"}); got < 4 {
		t.Errorf("failures by reason status = %v, want at least 4", got)
	}
	if got := metricValue(t, r.d, "xdplb_health_decision_to_map_seconds", nil); got < 3 {
		t.Errorf("decision-to-map observations = %v, want one per backend taken out (at least 3)", got)
	}
	if got := metricValue(t, r.d, "xdplb_backend_up", map[string]string{"service": "db", "backend": "198.18.0.31"}); got != 0 {
		t.Errorf("xdplb_backend_up{db,.31} = %v, want 0", got)
	}
}

// TestDaemonRestartAdoption runs the daemon twice on the same pins in a
// network namespace, as a SIGKILL and a restart would: the program stays
// attached in between (no forwarding gap), the flows stay in the flow
// table on their backends, and the operator's drain holds. The second run
// follows a neighbour-table change to a backend's MAC, and detaches on
// exit when asked to.
func TestDaemonRestartAdoption(t *testing.T) {
	testenv.Privileged(t)
	env := netns.New(t)
	dns, bns := env.NS("d"), env.NS("b")
	dl, bl := env.Veth(dns, "d0", bns, "b0")
	dns.AddAddr(dl, netip.MustParsePrefix("198.18.0.10/24"))
	bns.AddAddr(bl, netip.MustParsePrefix("198.18.0.21/24"))
	bns.AddAddr(bl, netip.MustParsePrefix("198.18.0.22/24"))
	for _, a := range []string{"198.18.0.21", "198.18.0.22"} {
		s := &flipServer{}
		s.status.Store(200)
		serveIn(t, bns, a+":80", s)
	}
	pinRoot := filepath.Join("/sys/fs/bpf", "xdplb-test-"+env.Prefix())
	t.Cleanup(func() { os.RemoveAll(pinRoot) })

	dirs := newDirs(t)
	dirs.write(t, fmt.Sprintf(`director:
  interface: %s
  source_address: 198.18.0.10
  api_socket: %s
  state_dir: %s
  pin_root: %s
  max_flows: 4096
  ring_size: 1021
services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
    health_check:
      type: tcp
      interval: 100ms
      rise: 1
      fall: 2
`, dl, dirs.socket, dirs.state, pinRoot))
	opts := Options{ConfigPath: dirs.config, InNS: dns.Do}
	ctx := context.Background()

	r1 := start(t, opts, dirs.socket)
	st, err := r1.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	peerMAC := bns.MAC(bl).String()
	if st.Adopted || st.Mode == "" {
		t.Errorf("first run: adopted %v, mode %q; want a fresh attachment", st.Adopted, st.Mode)
	}
	for _, a := range []string{"198.18.0.21", "198.18.0.22"} {
		if be := backendOf(t, st, "web", a); be.State != "active" || be.MAC != peerMAC {
			t.Errorf("backend %s: %s, MAC %s; want active with the peer's MAC %s (resolved)", a, be.State, be.MAC, peerMAC)
		}
	}

	// Flows through the pinned program, as a client's packets would make.
	bal, err := loader.Open(dl, pinRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	// The balancer forwards only frames addressed to its interface.
	dirMAC := dns.MAC(dl)
	frame := func(c netip.AddrPort, flags uint8) []byte {
		f := tcpFrame(c, webVIP, flags)
		copy(f[:6], dirMAC)
		return f
	}
	const n = 200
	for i := range n {
		runFrame(t, bal, frame(client(i), packet.TCPSyn))
	}
	flowsBefore := flowBackends(t, bal)
	if len(flowsBefore) != n {
		t.Fatalf("flow table holds %d flows, want %d", len(flowsBefore), n)
	}
	if _, err := r1.client.Drain(ctx, api.BackendRef{Service: "web", Backend: "198.18.0.21"}); err != nil {
		t.Fatal(err)
	}
	drainedID := backendOf(t, mustStatus(t, r1.client), "web", "198.18.0.21").ID

	// The daemon goes away; forwarding does not.
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}
	progID := xdpProgID(t, dns, dl)
	if progID == 0 {
		t.Fatal("no XDP program on the interface after the daemon stopped")
	}

	// While the second run adopts, the interface is never without a
	// program.
	gap := make(chan string, 1)
	sampling, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(gap)
		for sampling.Err() == nil {
			if id := xdpProgID(t, dns, dl); id == 0 {
				gap <- "interface without an XDP program during adoption"
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	r2 := start(t, opts, dirs.socket)
	stopSampling()
	if msg, ok := <-gap; ok {
		t.Error(msg)
	}
	if id := xdpProgID(t, dns, dl); id == progID {
		t.Errorf("program %d still in place: the second run did not load its own", id)
	}
	st = mustStatus(t, r2.client)
	if !st.Adopted {
		t.Error("second run did not adopt the pins")
	}
	if be := backendOf(t, st, "web", "198.18.0.21"); be.State != "draining" || be.Admin != "draining" || be.ID != drainedID {
		t.Errorf("drained backend after restart: %+v (was id %d)", be, drainedID)
	}
	if st.FlowTable.Entries < n {
		t.Errorf("status reports %d flows, want at least %d", st.FlowTable.Entries, n)
	}
	flowsAfter := flowBackends(t, bal)
	for f, id := range flowsBefore {
		if flowsAfter[f] != id {
			t.Errorf("flow %v moved from backend %d to %d", f, id, flowsAfter[f])
		}
	}
	// Established flows of the drained backend still reach it; new ones
	// do not.
	for i := range n {
		runFrame(t, bal, frame(client(i), packet.TCPAck))
	}
	for f, id := range flowBackends(t, bal) {
		if old, ok := flowsBefore[f]; ok && old != id {
			t.Errorf("established flow %v moved from %d to %d", f, old, id)
		}
	}
	for i := n; i < 2*n; i++ {
		runFrame(t, bal, frame(client(i), packet.TCPSyn))
	}
	for f, id := range flowBackends(t, bal) {
		if _, old := flowsBefore[f]; !old && id == drainedID {
			t.Errorf("new flow %v went to the drained backend", f)
		}
	}

	// The neighbour table says .22 has a new MAC: the daemon follows.
	newMAC := net.HardwareAddr{2, 0, 0x5e, 0, 0x99, 0x22}
	dns.SetNeigh(dl, netip.MustParseAddr("198.18.0.22"), newMAC)
	waitFor(t, 5*time.Second, "MAC of .22 follows the neighbour table", func() bool {
		return backendOf(t, mustStatus(t, r2.client), "web", "198.18.0.22").MAC == newMAC.String()
	})

	// Stop with detach: the program and its pins go.
	r2.d.opts.DetachOnExit = true
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := loader.Open(dl, pinRoot); !errors.Is(err, loader.ErrNotAttached) {
		t.Errorf("after --detach-on-exit, Open = %v; want not attached", err)
	}
	if id := xdpProgID(t, dns, dl); id != 0 {
		t.Errorf("XDP program %d still on the interface after detach", id)
	}
}

func mustStatus(t *testing.T, c *api.Client) api.Status {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func runFrame(t *testing.T, b *loader.Balancer, frame []byte) loader.XDPAction {
	t.Helper()
	out := make([]byte, len(frame)+64)
	ret, err := b.Program().Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return loader.XDPAction(ret)
}

// flowBackends returns the flow table: backend id by client.
func flowBackends(t *testing.T, b *loader.Balancer) map[netip.AddrPort]uint32 {
	t.Helper()
	out := map[netip.AddrPort]uint32{}
	if err := b.Flows(func(f loader.Flow) bool {
		out[f.Src] = f.BackendID
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// xdpProgID returns the id of the XDP program attached to link in ns, 0
// for none.
func xdpProgID(t *testing.T, ns *netns.NS, link string) uint32 {
	l, err := ns.Netlink().LinkByName(link)
	if err != nil {
		t.Errorf("link %s: %v", link, err)
		return 0
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId
	}
	return 0
}

// TestDaemonRuntimeVIPHealthChecked: a VIP added through the API with a
// health check has its backends checked like a configured service's, and
// keeps the check across a restart of the daemon (the runtime state).
func TestDaemonRuntimeVIPHealthChecked(t *testing.T) {
	b := loadBalancer(t)
	env := netns.New(t)
	ns := env.NS("hc")
	servers := healthyServers(t, ns, "198.18.0.41", "198.18.0.42")
	dirs := newDirs(t)
	dirs.write(t, dirs.director("")+"services: []\n")
	opts := withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(b), InNS: ns.Do})
	r := start(t, opts, dirs.socket)
	ctx := context.Background()

	vip := loader.VIP{Addr: netip.MustParseAddr("198.18.1.140"), Port: 80, Proto: loader.TCP}
	bad := api.VIPSpec{VIP: vip.String(), Forwarding: "dr", HealthCheck: "{type: http, interval: 5ms}"}
	if _, err := r.client.AddVIP(ctx, bad); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "health_check.interval") {
		t.Fatalf("add with an invalid check: %v, want invalid naming health_check.interval", err)
	}
	spec := api.VIPSpec{VIP: vip.String(), Forwarding: "dr",
		HealthCheck: "{type: http, port: 8080, path: /healthz, interval: 50ms, timeout: 40ms, rise: 2, fall: 2}"}
	res, err := r.client.AddVIP(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "http check of port 8080 every 50ms") {
		t.Errorf("add message %q does not say how the backends are checked", res.Message)
	}
	for _, a := range []string{"198.18.0.41", "198.18.0.42"} {
		if _, err := r.client.AddBackend(ctx, api.BackendSpec{Service: vip.String(), Backend: a, MAC: "02:00:5e:00:00:01"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "both backends active", func() bool {
		return mapState(t, b, vip, "198.18.0.41") == loader.StateActive && mapState(t, b, vip, "198.18.0.42") == loader.StateActive
	})
	servers["198.18.0.42"].status.Store(503)
	waitFor(t, 5*time.Second, ".42 down", func() bool { return mapState(t, b, vip, "198.18.0.42") == loader.StateDown })
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if be := backendOf(t, st, vip.String(), "198.18.0.42"); be.Health != "down" || !strings.Contains(be.LastCheckError, "503") {
		t.Errorf("status of the failing backend: %+v", be)
	}

	// The check is part of the saved runtime state: a restarted daemon
	// runs it again.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	servers["198.18.0.42"].status.Store(200)
	r2 := start(t, opts, dirs.socket)
	servers["198.18.0.41"].status.Store(503)
	waitFor(t, 5*time.Second, ".41 down after the restart", func() bool { return mapState(t, b, vip, "198.18.0.41") == loader.StateDown })
	waitFor(t, 5*time.Second, ".42 back after the restart", func() bool { return mapState(t, b, vip, "198.18.0.42") == loader.StateActive })
	st, err = r2.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.VIP == vip.String() && s.HealthCheck != "http" {
			t.Errorf("status after the restart: health check %q, want http", s.HealthCheck)
		}
	}
}
