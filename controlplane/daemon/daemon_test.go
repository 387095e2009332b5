package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/neigh"
	"github.com/xdplb/xdplb/loader"
)

// staticResolver answers from a table: macOf for every 198.18.0.0/24
// address unless overridden, no reply otherwise.
type staticResolver struct{ missing map[netip.Addr]bool }

func (r staticResolver) Resolve(_ context.Context, iface string, a netip.Addr) (neigh.Result, error) {
	if r.missing[a] || !netip.MustParsePrefix("198.18.0.0/24").Contains(a) {
		return neigh.Result{}, fmt.Errorf("resolve %v on %s: %w", a, iface, neigh.ErrNoReply)
	}
	return neigh.Result{MAC: macOf(a), NextHop: a, Source: neigh.FromNeighbourTable}, nil
}

// testDirs are the per-test paths a configuration names.
type testDirs struct {
	dir, socket, state, config string
}

func newDirs(t *testing.T) testDirs {
	t.Helper()
	dir := t.TempDir()
	return testDirs{
		dir:    dir,
		socket: filepath.Join(dir, "run", "xdplb.sock"),
		state:  filepath.Join(dir, "state"),
		config: filepath.Join(dir, "xdplb.yaml"),
	}
}

// director returns the director section for these paths.
func (d testDirs) director(extra string) string {
	return fmt.Sprintf(`director:
  interface: eth0
  source_address: 198.18.0.10
  api_socket: %s
  state_dir: %s
  pin_root: %s
%s`, d.socket, d.state, filepath.Join(d.dir, "pins"), extra)
}

func (d testDirs) write(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(d.config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const apiServices = `services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
        weight: 2
    health_check:
      type: none
  - name: db
    vip: 198.18.1.101
    port: 3306
    forwarding: tun
    scheduler: failover
    backends:
      - address: 198.18.0.31
        weight: 2
      - address: 198.18.0.32
    health_check:
      type: none
`

// fakeOpen returns an Open hook that hands out dp.
func fakeOpen(dp Dataplane) func(*config.Config, func(func() error) error, *slog.Logger) (Dataplane, Attachment, error) {
	return func(cfg *config.Config, _ func(func() error) error, _ *slog.Logger) (Dataplane, Attachment, error) {
		return dp, Attachment{Interface: cfg.Director.Interface, Mode: "test", Close: func(bool) error { return nil }}, nil
	}
}

// running is a daemon started by a test.
type running struct {
	d      *Daemon
	client *api.Client
	stop   func() error
}

// freeLoopbackPort returns a 127.0.0.1 address with a port nothing
// listens on now.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// withFakes completes opts for a daemon without an interface: next hops
// from staticResolver, no neighbour table to follow.
func withFakes(opts Options) Options {
	if opts.Resolver == nil {
		opts.Resolver = staticResolver{}
	}
	if opts.WatchNeighbours == nil {
		opts.WatchNeighbours = func(context.Context, string) (<-chan NeighUpdate, error) { return nil, nil }
	}
	return opts
}

// start runs a daemon with opts until the test ends or stop is called.
func start(t *testing.T, opts Options, socket string) *running {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start within 30s")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("daemon did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop daemon: %v", err)
		}
	})
	return &running{d: d, client: api.NewClient(socket), stop: stop}
}

func backendOf(t *testing.T, st api.Status, service, addr string) api.Backend {
	t.Helper()
	for _, s := range st.Services {
		if s.Name != service && s.VIP != service {
			continue
		}
		for _, b := range s.Backends {
			if b.Address == addr {
				return b
			}
		}
	}
	t.Fatalf("status has no backend %s of %s", addr, service)
	return api.Backend{}
}

// TestDaemonDrainPersists drains a backend through the API, stops the
// daemon and starts another on the same maps and state directory: the
// drain holds, and the restart writes nothing to the maps.
func TestDaemonDrainPersists(t *testing.T) {
	dirs := newDirs(t)
	metricsAddr := freeLoopbackPort(t)
	dirs.write(t, dirs.director("  metrics_listen: "+metricsAddr+"\n")+apiServices)
	dp := newFakeDP(1021)
	var logs logBuffer
	opts := withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(dp), Log: logs.logger()})
	ctx := context.Background()

	r := start(t, opts, dirs.socket)
	fi, err := os.Stat(dirs.socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("API socket: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	res, err := r.client.Drain(ctx, api.BackendRef{Service: "web", Backend: "198.18.0.21"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "drained") {
		t.Errorf("drain answered %q", res.Message)
	}
	if b, _ := dp.backendByAddr(webVIP, "198.18.0.21"); b.State != loader.StateDraining {
		t.Errorf("drained backend is %s in the maps", b.State)
	}
	if owners := dp.ringOwners(webVIP); owners["198.18.0.21"] != 0 {
		t.Errorf("drained backend still owns %d slots", owners["198.18.0.21"])
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := backendOf(t, st, "web", "198.18.0.21"); b.State != "draining" || b.Admin != "draining" || b.Reason != "drained by an operator" {
		t.Errorf("status of the drained backend: %+v", b)
	}
	// The metrics endpoint says the same.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`xdplb_backend_state{backend="198.18.0.21",service="web",state="draining",vip="198.18.1.100:80/tcp"} 1`,
		`xdplb_service_active_backends{service="web",vip="198.18.1.100:80/tcp"} 1`,
		"xdplb_build_info{",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	saved, err := os.ReadFile(filepath.Join(dirs.state, stateFile))
	if err != nil || !strings.Contains(string(saved), `"admin": "draining"`) {
		t.Errorf("state file after drain: %v\n%s", err, saved)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	dp.takeWrites()

	// A second daemon on the same maps and state.
	r2 := start(t, opts, dirs.socket)
	if w := dp.takeWrites(); len(w) != 0 {
		t.Errorf("restart wrote %q to the maps, want nothing", w)
	}
	st, err = r2.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := backendOf(t, st, "web", "198.18.0.21"); b.State != "draining" || b.Admin != "draining" {
		t.Errorf("after restart: %+v, want still drained", b)
	}
	if _, err := r2.client.Undrain(ctx, api.BackendRef{Service: "198.18.1.100:80/tcp", Backend: "198.18.0.21"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := dp.backendByAddr(webVIP, "198.18.0.21"); b.State != loader.StateActive {
		t.Errorf("undrained backend is %s", b.State)
	}
	saved, _ = os.ReadFile(filepath.Join(dirs.state, stateFile))
	if strings.Contains(string(saved), "draining") {
		t.Errorf("state file still holds the drain:\n%s", saved)
	}

	// Errors keep their kind.
	_, err = r2.client.Drain(ctx, api.BackendRef{Service: "nope", Backend: "198.18.0.21"})
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "web (198.18.1.100:80/tcp)") {
		t.Errorf("drain of an unknown service: %v, want not found listing the services", err)
	}
	_, err = r2.client.Drain(ctx, api.BackendRef{Service: "web", Backend: "198.18.0.99"})
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "198.18.0.21, 198.18.0.22") {
		t.Errorf("drain of an unknown backend: %v", err)
	}
	_, err = r2.client.Drain(ctx, api.BackendRef{Service: "web", Backend: "web1"})
	if !errors.Is(err, api.ErrInvalid) {
		t.Errorf("drain of a malformed backend: %v, want invalid", err)
	}
}

// TestDaemonRuntimeChanges: the CLI's map-writing commands go through the
// API as saved runtime changes that survive a restart.
func TestDaemonRuntimeChanges(t *testing.T) {
	dirs := newDirs(t)
	dirs.write(t, dirs.director("")+apiServices)
	dp := newFakeDP(1021)
	opts := withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(dp)})
	ctx := context.Background()
	r := start(t, opts, dirs.socket)
	c := r.client

	vip := "198.18.1.150:443/tcp"
	if _, err := c.AddVIP(ctx, api.VIPSpec{VIP: vip, Forwarding: "tun", Scheduler: "source-hash", PersistencePrefix: 24}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddVIP(ctx, api.VIPSpec{VIP: vip, Forwarding: "dr"}); !errors.Is(err, api.ErrExists) {
		t.Errorf("second add: %v, want exists", err)
	}
	if _, err := c.AddVIP(ctx, api.VIPSpec{VIP: "198.18.1.100:80/tcp", Forwarding: "dr"}); !errors.Is(err, api.ErrExists) || !strings.Contains(err.Error(), "service web") {
		t.Errorf("add of a configured VIP: %v, want exists naming the service", err)
	}
	w := uint32(3)
	if _, err := c.AddBackend(ctx, api.BackendSpec{Service: vip, Backend: "198.18.0.51", Weight: &w}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddBackend(ctx, api.BackendSpec{Service: vip, Backend: "198.18.0.52", MAC: "02:00:5e:00:00:52"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddBackend(ctx, api.BackendSpec{Service: vip, Backend: "198.18.7.1"}); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "--mac") {
		t.Errorf("add of an unresolvable backend: %v, want invalid suggesting --mac", err)
	}
	// A configured service changed at runtime.
	down := "down"
	if _, err := c.SetBackend(ctx, api.BackendChange{Service: "db", Backend: "198.18.0.31", State: &down}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBackend(ctx, api.BackendRef{Service: "web", Backend: "198.18.0.22"}); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T) {
		t.Helper()
		v, _ := loader.ParseVIP(vip)
		e, err := dp.LookupVIP(v)
		if err != nil || e.Config.Forwarding != loader.ForwardTUN || !e.Config.Persist || e.Config.PersistPrefix != 24 {
			t.Errorf("runtime VIP in the maps: %+v, %v", e, err)
		}
		if b, ok := dp.backendByAddr(v, "198.18.0.51"); !ok || b.Weight != 3 || b.State != loader.StateActive {
			t.Errorf("runtime backend .51: %+v", b)
		}
		if b, ok := dp.backendByAddr(v, "198.18.0.52"); !ok || b.MAC.String() != "02:00:5e:00:00:52" {
			t.Errorf("runtime backend .52 with a pinned MAC: %+v", b)
		}
		if b, _ := dp.backendByAddr(dbVIP, "198.18.0.31"); b.State != loader.StateDown {
			t.Errorf("db .31 set down: %s", b.State)
		}
		// failover: .32 takes everything once .31 is down.
		if owners := dp.ringOwners(dbVIP); owners["198.18.0.32"] != 1021 {
			t.Errorf("failover table %v, want all slots on .32", owners)
		}
		if _, ok := dp.backendByAddr(webVIP, "198.18.0.22"); ok {
			t.Error("deleted backend .22 still in the maps")
		}
	}
	check(t)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := backendOf(t, st, vip, "198.18.0.51"); b.Origin != "runtime" {
		t.Errorf("runtime backend reported as %+v", b)
	}

	// Restart: nothing lost, nothing rewritten.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	dp.takeWrites()
	r2 := start(t, opts, dirs.socket)
	check(t)
	if w := dp.takeWrites(); len(w) != 0 {
		t.Errorf("restart wrote %q", w)
	}

	// Deleting a configured VIP holds across a reload of the same file.
	if _, err := r2.client.DeleteVIP(ctx, api.VIPRef{VIP: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.LookupVIP(webVIP); err == nil {
		t.Error("deleted configured VIP is back after a reload")
	}
	if _, err := r2.client.AddVIP(ctx, api.VIPSpec{VIP: webVIP.String(), Forwarding: "dr"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.LookupVIP(webVIP); err != nil {
		t.Errorf("restored configured VIP: %v", err)
	}
}

// TestDaemonReload reloads a configuration with a changed, an added and a
// removed service, then refuses bad ones without changing anything.
func TestDaemonReload(t *testing.T) {
	dirs := newDirs(t)
	dirs.write(t, dirs.director("")+apiServices)
	dp := newFakeDP(1021)
	var logs logBuffer
	r := start(t, withFakes(Options{ConfigPath: dirs.config, Open: fakeOpen(dp), Log: logs.logger()}), dirs.socket)
	ctx := context.Background()
	before, _ := dp.backendByAddr(webVIP, "198.18.0.21")
	dp.takeWrites()

	next := dirs.director("") + `services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.22
        weight: 2
      - address: 198.18.0.23
    health_check:
      type: none
  - name: dns
    vip: 198.18.1.102
    port: 53
    protocol: udp
    forwarding: dr
    backends:
      - address: 198.18.0.41
    health_check:
      type: none
`
	dirs.write(t, next)
	res, err := r.client.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "services: +dns -db ~web(backends)"; res.Changes != want {
		t.Errorf("reload changes %q, want %q", res.Changes, want)
	}
	if _, err := dp.LookupVIP(dbVIP); err == nil {
		t.Error("removed service db still forwarded")
	}
	dns := loader.VIP{Addr: netip.MustParseAddr("198.18.1.102"), Port: 53, Proto: loader.UDP}
	if b, ok := dp.backendByAddr(dns, "198.18.0.41"); !ok || b.State != loader.StateActive {
		t.Errorf("added service's backend: %+v, %v", b, ok)
	}
	if after, _ := dp.backendByAddr(webVIP, "198.18.0.21"); after.ID != before.ID {
		t.Errorf("web .21 moved from slot %d to %d", before.ID, after.ID)
	}
	if b, ok := dp.backendByAddr(webVIP, "198.18.0.23"); !ok || b.State != loader.StateActive {
		t.Errorf("added backend .23: %+v", b)
	}
	w := dp.takeWrites()
	if w[0] != "delete vip 198.18.1.101:3306/tcp" {
		t.Errorf("writes %q: want the removal first", w)
	}

	// Refused files change nothing, and say where the problem is.
	refusals := []struct {
		name, body string
		want       []string
	}{
		{"syntax", next + "  - name: [\n", []string{"xdplb.yaml:"}},
		{"bad value", strings.Replace(next, "forwarding: dr\n    backends:\n      - address: 198.18.0.41", "forwarding: direct\n    backends:\n      - address: 198.18.0.41", 1),
			[]string{"xdplb.yaml:23:17: services[1].forwarding: \"direct\" is not allowed"}},
		{"needs restart", strings.Replace(next, "interface: eth0", "interface: eth1", 1),
			[]string{"xdplb.yaml:2:14: director.interface: changed, but takes effect only when the daemon starts"}},
		{"does not fit", strings.Replace(next, "pin_root:", "max_backends: 3\n  pin_root:", 1),
			[]string{"more than director.max_backends (3)"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			dirs.write(t, tt.body)
			_, err := r.client.Reload(ctx)
			if !errors.Is(err, api.ErrConfig) {
				t.Fatalf("reload: %v, want refused", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if !strings.Contains(err.Error(), "nothing changed") {
				t.Errorf("error does not say nothing changed:\n%v", err)
			}
			if w := dp.takeWrites(); len(w) != 0 {
				t.Errorf("refused reload wrote %q", w)
			}
			st, err := r.client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.LastReload == nil || st.LastReload.OK || st.LastReload.Error == "" {
				t.Errorf("status last reload %+v, want the refusal", st.LastReload)
			}
			if len(st.Services) != 2 {
				t.Errorf("status lists %d services after a refused reload, want 2", len(st.Services))
			}
		})
	}
	if got := metricValue(t, r.d, "xdplb_config_reloads_total", map[string]string{"result": "failure"}); got != float64(len(refusals)) {
		t.Errorf("xdplb_config_reloads_total{result=failure} = %v, want %d", got, len(refusals))
	}
	if !strings.Contains(logs.String(), "reload refused") {
		t.Error("refusal not logged")
	}
}

// metricValue returns the value of the series of name whose labels
// include want (for a histogram, its count), from the daemon's registry.
func metricValue(t *testing.T, d *Daemon, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := d.Metrics().Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}
