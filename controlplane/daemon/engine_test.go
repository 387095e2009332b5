package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/loader"
)

const engineYAML = `
director:
  interface: eth0
  source_address: 198.18.0.10
services:
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
      type: tcp
  - name: db
    vip: 198.18.1.101
    port: 3306
    forwarding: tun
    scheduler: source-hash
    persistence_granularity: 24
    backends:
      - address: 198.18.0.31
      - address: 198.18.0.32
    health_check:
      type: tcp
      on_failure: drain
`

var (
	webVIP = loader.VIP{Addr: netip.MustParseAddr("198.18.1.100"), Port: 80, Proto: loader.TCP}
	dbVIP  = loader.VIP{Addr: netip.MustParseAddr("198.18.1.101"), Port: 3306, Proto: loader.TCP}
)

func mustParse(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("xdplb.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

// macOf is the MAC the tests give backend a: 02:00:00:00:00:<last byte>.
func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{2, 0, 0, 0, 0, b[3]}
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestEngine programs the services of yaml into dp, with every backend
// resolved to macOf.
func newTestEngine(t *testing.T, dp Dataplane, yaml string, logs *logBuffer) *engine {
	t.Helper()
	e := newEngine(dp, "eth0", logs.logger())
	setConfig(t, e, mustParse(t, yaml), newRuntimeState())
	e.applyAll()
	return e
}

func setConfig(t *testing.T, e *engine, cfg *config.Config, rt *runtimeState) {
	t.Helper()
	rt, _ = pruneRuntime(cfg, rt)
	svcs, err := buildServices(cfg, nil, rt)
	if err != nil {
		t.Fatal(err)
	}
	e.setServices(svcs)
	for _, a := range e.addrs() {
		if _, ok := e.hops[a]; !ok {
			e.setHop(a, &hop{mac: macOf(a), nextHop: a, source: "neighbour-table"})
		}
	}
}

func TestEngineProgramsServices(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	newTestEngine(t, dp, engineYAML, &logs)

	tests := []struct {
		vip   loader.VIP
		addr  string
		state loader.BackendState
		w     uint32
	}{
		{webVIP, "198.18.0.21", loader.StateActive, 1},
		{webVIP, "198.18.0.22", loader.StateActive, 2},
		{webVIP, "198.18.0.23", loader.StateActive, 1},
		{dbVIP, "198.18.0.31", loader.StateActive, 1},
		{dbVIP, "198.18.0.32", loader.StateActive, 1},
	}
	for _, tt := range tests {
		b, ok := dp.backendByAddr(tt.vip, tt.addr)
		if !ok {
			t.Errorf("%v: backend %s missing", tt.vip, tt.addr)
			continue
		}
		if b.State != tt.state || b.Weight != tt.w || b.MAC.String() != macOf(b.Addr).String() {
			t.Errorf("%v: backend %s = %s w=%d mac=%s, want %s w=%d mac=%s", tt.vip, tt.addr, b.State, b.Weight, b.MAC, tt.state, tt.w, macOf(b.Addr))
		}
	}
	owners := dp.ringOwners(webVIP)
	if owners["198.18.0.22"] < owners["198.18.0.21"]*3/2 || owners["none"] != 0 {
		t.Errorf("web table owners %v: want .22 about twice .21 and no empty slot", owners)
	}
	e, _ := dp.LookupVIP(dbVIP)
	if !e.Config.Persist || e.Config.PersistPrefix != 24 || e.Config.Forwarding != loader.ForwardTUN {
		t.Errorf("db VIP config %+v, want tun with source persistence /24", e.Config)
	}
}

// TestEngineMinimalWrites: a second pass over unchanged services writes
// nothing, and a change touches only its own VIP.
func TestEngineMinimalWrites(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	e := newTestEngine(t, dp, engineYAML, &logs)
	dp.takeWrites()

	setConfig(t, e, mustParse(t, engineYAML), newRuntimeState())
	e.applyAll()
	if w := dp.takeWrites(); len(w) != 0 {
		t.Errorf("unchanged configuration wrote %q", w)
	}

	changed := strings.Replace(engineYAML, "      - address: 198.18.0.32\n", "      - address: 198.18.0.32\n        weight: 3\n", 1)
	setConfig(t, e, mustParse(t, changed), newRuntimeState())
	e.applyAll()
	w := dp.takeWrites()
	if want := []string{"set backend 198.18.0.32 active w=3", "set ring 1"}; !slices.Equal(want, w) {
		t.Errorf("weight change wrote %q, want %q", w, want)
	}
}

// TestEngineHealthFastPath: a failing backend is taken out with one map
// write before its table is rebuilt; a recovering one is written before
// the table that names it.
func TestEngineHealthFastPath(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	e := newTestEngine(t, dp, engineYAML, &logs)
	dp.takeWrites()

	k := bkey{webVIP, netip.MustParseAddr("198.18.0.22")}
	if !e.setHealth(k, false) {
		t.Fatal("setHealth(down) did not take the backend out at once")
	}
	if want, got := []string{"set backend 198.18.0.22 down w=2"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("fast path wrote %q, want %q", got, want)
	}
	e.applyAll()
	if want, got := []string{"set ring 0"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("after the fast path, Apply wrote %q, want only the table %q", got, want)
	}
	if n := dp.ringOwners(webVIP)["198.18.0.22"]; n != 0 {
		t.Errorf("down backend still owns %d slots", n)
	}

	// Recovery: backend first, then the table.
	if e.setHealth(k, true) {
		t.Error("setHealth(up) wrote before the table")
	}
	e.applyAll()
	if want, got := []string{"set backend 198.18.0.22 active w=2", "set ring 0"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("recovery wrote %q, want %q", got, want)
	}

	// on_failure: drain.
	k = bkey{dbVIP, netip.MustParseAddr("198.18.0.31")}
	e.setHealth(k, false)
	if want, got := []string{"set backend 198.18.0.31 draining w=1"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("drain on failure wrote %q, want %q", got, want)
	}
	e.applyAll()
	if b, _ := dp.backendByAddr(dbVIP, "198.18.0.31"); b.State != loader.StateDraining {
		t.Errorf("db backend .31 is %s, want draining", b.State)
	}
}

// TestEngineStarvedService: when every backend of a service is down the
// daemon says so, once, with what the data plane does.
func TestEngineStarvedService(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	e := newTestEngine(t, dp, engineYAML, &logs)
	for _, a := range []string{"198.18.0.21", "198.18.0.22", "198.18.0.23"} {
		e.setHealth(bkey{webVIP, netip.MustParseAddr(a)}, false)
		e.applyAll()
	}
	if owners := dp.ringOwners(webVIP); owners["none"] != 1021 {
		t.Errorf("table of a service without backends: %v, want every slot empty", owners)
	}
	out := logs.String()
	if n := strings.Count(out, "service has no backend taking new flows"); n != 1 {
		t.Errorf("logged the starved service %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "drop_no_backend") || !strings.Contains(out, "established flows included") {
		t.Errorf("starved service log does not say, at error level, what the data plane does:\n%s", out)
	}
	if !e.starved[webVIP] {
		t.Error("service not recorded as starved")
	}
	e.setHealth(bkey{webVIP, netip.MustParseAddr("198.18.0.21")}, true)
	e.applyAll()
	if e.starved[webVIP] || !strings.Contains(logs.String(), "service forwards new flows again") {
		t.Error("recovery not logged")
	}
}

// TestEngineReload applies a configuration with a changed, an added and a
// removed service: the removed VIP is deleted first, the added one
// created, the changed one rewritten, and backends that stay keep their
// slots (so their flows stay pinned).
func TestEngineReload(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	e := newTestEngine(t, dp, engineYAML, &logs)
	before, _ := dp.backendByAddr(webVIP, "198.18.0.21")
	dp.takeWrites()

	next := `
director:
  interface: eth0
  source_address: 198.18.0.10
services:
  - name: web
    vip: 198.18.1.100
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
      - address: 198.18.0.23
      - address: 198.18.0.24
    health_check:
      type: tcp
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
	setConfig(t, e, mustParse(t, next), newRuntimeState())
	e.applyAll()
	w := dp.takeWrites()
	if len(w) == 0 || w[0] != "delete vip 198.18.1.101:3306/tcp" {
		t.Errorf("first write %q, want the removed VIP's deletion first; all: %q", w, w)
	}
	for _, want := range []string{"add vip 198.18.1.102:53/udp", "set backend 198.18.0.24 active w=1", "delete backend 198.18.0.22"} {
		if !slices.Contains(w, want) {
			t.Errorf("writes %q lack %q", w, want)
		}
	}
	after, _ := dp.backendByAddr(webVIP, "198.18.0.21")
	if before.ID != after.ID {
		t.Errorf("backend .21 moved from slot %d to %d: its flows would be re-hashed", before.ID, after.ID)
	}
	if _, err := dp.LookupVIP(dbVIP); err == nil {
		t.Error("removed service still in the data plane")
	}
}

// TestEngineAdopt: what an earlier run left decides the initial health, so
// a restart neither revives a failed backend nor fails a healthy one, and
// a VIP no longer configured is deleted.
func TestEngineAdopt(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	first := newTestEngine(t, dp, engineYAML, &logs)
	first.setHealth(bkey{webVIP, netip.MustParseAddr("198.18.0.23")}, false)
	first.applyAll()
	stale := loader.VIP{Addr: netip.MustParseAddr("198.18.1.200"), Port: 8080, Proto: loader.TCP}
	if _, err := dp.AddVIP(stale, loader.VIPConfig{}); err != nil {
		t.Fatal(err)
	}
	dp.takeWrites()

	e := newEngine(dp, "eth0", logs.logger())
	inMaps, err := e.adopt()
	if err != nil {
		t.Fatal(err)
	}
	// The next hops come from the maps until resolved.
	if h := e.hops[netip.MustParseAddr("198.18.0.21")]; h == nil || h.source != "maps" || h.mac.String() != "02:00:00:00:00:15" {
		t.Errorf("hop of .21 from the maps = %+v", h)
	}
	cfg := mustParse(t, engineYAML)
	svcs, err := buildServices(cfg, nil, newRuntimeState())
	if err != nil {
		t.Fatal(err)
	}
	e.setServices(svcs)
	init := e.initialStates(inMaps)
	want := map[string]health.Initial{
		"198.18.0.21": health.InitFullyUp, "198.18.0.22": health.InitFullyUp, "198.18.0.23": health.InitFullyDown,
	}
	for a, w := range want {
		if got := init[bkey{webVIP, netip.MustParseAddr(a)}]; got != w {
			t.Errorf("initial state of %s = %v, want %v", a, got, w)
		}
	}
	e.applyAll()
	w := dp.takeWrites()
	// Only the stale VIP goes; everything else was already right, so not
	// even a table is rewritten.
	if want := []string{"delete vip 198.18.1.200:8080/tcp"}; !slices.Equal(want, w) {
		t.Errorf("adoption wrote %q, want %q", w, want)
	}
}

// TestEngineNextHop: a backend without a MAC is kept out of the table, and
// a MAC change rewrites its slot.
func TestEngineNextHop(t *testing.T) {
	dp := newFakeDP(1021)
	var logs logBuffer
	e := newEngine(dp, "eth0", logs.logger())
	cfg := mustParse(t, engineYAML)
	svcs, _ := buildServices(cfg, nil, newRuntimeState())
	e.setServices(svcs)
	for _, a := range e.addrs() {
		if a.String() != "198.18.0.23" {
			e.setHop(a, &hop{mac: macOf(a), nextHop: a})
		}
	}
	e.setHop(netip.MustParseAddr("198.18.0.31"), &hop{mac: macOf(netip.MustParseAddr("198.18.0.1")), nextHop: netip.MustParseAddr("198.18.0.1"), gateway: true})
	e.applyAll()
	if b, _ := dp.backendByAddr(webVIP, "198.18.0.23"); b.State != loader.StateDown {
		t.Errorf("unresolved backend is %s, want down", b.State)
	}
	if _, why := e.desired(e.services[webVIP]); !strings.Contains(why[netip.MustParseAddr("198.18.0.23")], "not resolved") {
		t.Errorf("reason for .23: %q", why)
	}
	// TUN backends may sit behind a router.
	if b, _ := dp.backendByAddr(dbVIP, "198.18.0.31"); b.State != loader.StateActive || b.MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("TUN backend via gateway: %s %s, want active with the gateway's MAC", b.State, b.MAC)
	}
	dp.takeWrites()

	newMAC := net.HardwareAddr{2, 0, 0, 0, 0x99, 0x21}
	e.setHop(netip.MustParseAddr("198.18.0.21"), &hop{mac: newMAC, nextHop: netip.MustParseAddr("198.18.0.21")})
	e.applyAll()
	if want, got := []string{"set backend 198.18.0.21 active w=1"}, dp.takeWrites(); !slices.Equal(want, got) {
		t.Errorf("MAC change wrote %q, want %q", got, want)
	}
	if b, _ := dp.backendByAddr(webVIP, "198.18.0.21"); b.MAC.String() != newMAC.String() {
		t.Errorf("MAC of .21 = %s, want %s", b.MAC, newMAC)
	}
	if !strings.Contains(logs.String(), "next hop changed") {
		t.Error("MAC change not logged")
	}
}

// TestEngineRetriesFailures: a write that fails is reported and retried
// without disturbing the other services.
func TestEngineRetriesFailures(t *testing.T) {
	dp := newFakeDP(1021)
	dp.failSet = "198.18.0.32"
	var logs logBuffer
	e := newTestEngine(t, dp, engineYAML, &logs)
	if e.failed[dbVIP] == nil {
		t.Fatal("failure not recorded")
	}
	if _, ok := dp.backendByAddr(webVIP, "198.18.0.21"); !ok {
		t.Error("a failing service kept another from being programmed")
	}
	if !strings.Contains(logs.String(), "cannot program service") {
		t.Error("failure not logged")
	}
	dp.mu.Lock()
	dp.failSet = ""
	dp.mu.Unlock()
	e.retryFailed()
	e.applyAll()
	if e.failed[dbVIP] != nil {
		t.Errorf("still failed after retry: %v", e.failed[dbVIP])
	}
	if b, ok := dp.backendByAddr(dbVIP, "198.18.0.32"); !ok || b.State != loader.StateActive {
		t.Errorf("after retry .32 = %+v, %v", b, ok)
	}
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
