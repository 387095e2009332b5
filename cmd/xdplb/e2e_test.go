package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/loader"
)

// buildCLI builds the xdplb binary into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xdplb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli runs the built binary inside a namespace, with the test's pin
// root, as an operator would run it: one process per command.
type cli struct {
	t       *testing.T
	bin     string
	ns      *netns.NS
	pinRoot string
}

func (c cli) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errb bytes.Buffer
	err = c.ns.Do(func() error {
		// No command of the session may take long; a hang fails the
		// test instead of stalling it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.bin, append([]string{"--pin-root", c.pinRoot}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	return out.String(), errb.String(), err
}

// ok runs a command that must succeed and returns its standard output.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("xdplb %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// json runs a command with --json and decodes its output into v.
func (c cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		c.t.Fatalf("xdplb %s --json: decode: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestEndToEnd drives the built binary through an operator's session on a
// veth pair: the director namespace holds d0 (198.18.0.1), the client
// namespace holds c0 (198.18.0.21), which also answers ARP as a backend.
func TestEndToEnd(t *testing.T) {
	env := netns.New(t)
	bin := buildCLI(t)
	dir, client := env.NS("dir"), env.NS("cl")
	dl, cl := env.Veth(dir, "d0", client, "c0")
	dir.AddAddr(dl, netip.MustParsePrefix("198.18.0.1/24"))
	client.AddAddr(cl, netip.MustParsePrefix("198.18.0.21/24"))
	client.AddRoute(netip.MustParsePrefix("198.18.1.0/24"), netip.MustParseAddr("198.18.0.1"))
	clientMAC := client.MAC(cl)

	pinRoot := filepath.Join("/sys/fs/bpf", env.Prefix())
	t.Cleanup(func() {
		// Whatever the test left behind, never leave a program attached.
		loader.Detach(dl, pinRoot)
		os.RemoveAll(pinRoot)
	})
	x := cli{t: t, bin: bin, ns: dir, pinRoot: pinRoot}
	const vip = "198.18.1.100:80/tcp"

	// attach
	out := x.ok("attach", dl, "--ring-size", "1021", "--max-backends", "16", "--max-flows", "1024")
	for _, want := range []string{"attached " + dl + " in native mode", filepath.Join(pinRoot, dl), "memory locked", "tunnel source  198.18.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("attach output lacks %q:\n%s", want, out)
		}
	}

	// A map command finds the only attached interface by itself; one on
	// another interface is told what to do.
	if _, _, err := x.run("--iface", "eth9", "vip", "list"); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("vip list on an unattached interface: %v, want exit status 1", err)
	}

	// vip add, backend add (ARP, and --mac). No daemon answers on
	// --socket: the commands write the maps themselves, and say so.
	_, errOut, err := x.run("vip", "add", vip, "--forwarding", "dr", "--verbose", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if err != nil || !strings.Contains(errOut, "writing maps directly: no daemon answers on ") {
		t.Fatalf("vip add without a daemon: %v, stderr %q; want 'writing maps directly'", err, errOut)
	}
	_, errOut, err = x.run("vip", "add", vip, "--forwarding", "tun")
	if err == nil || !strings.Contains(errOut, "exists already") {
		t.Errorf("second vip add: %v, stderr %q; want 'exists already'", err, errOut)
	}
	_, errOut = x.ok("backend", "add", vip, "198.18.0.21"), ""
	x.ok("backend", "add", vip, "198.18.0.22", "--mac", "02:00:5e:00:00:22", "--weight", "2")
	_, errOut, err = x.run("backend", "add", "198.18.1.200:80/tcp", "198.18.0.23", "--mac", "02:00:5e:00:00:23")
	if err == nil || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "existing VIPs: "+vip) {
		t.Errorf("backend add to a missing VIP: %v, stderr %q; want the existing VIPs listed", err, errOut)
	}

	// vip list and maps dump, decoded
	var list vipListJSON
	x.json(&list, "vip", "list")
	if len(list.VIPs) != 1 {
		t.Fatalf("vip list: %+v, want one VIP", list)
	}
	v := list.VIPs[0]
	if v.VIP != vip || v.Address != "198.18.1.100" || v.Port != 80 || v.Protocol != "tcp" ||
		v.Forwarding != "dr" || v.Scheduler != "maglev" || v.RingSize != 1021 || v.EmptySlots != 0 || len(v.Backends) != 2 {
		t.Errorf("vip list entry: %+v", v)
	}

	var dump dumpOf[[]backendEntryJSON]
	x.json(&dump, "maps", "dump", "backends")
	wantBackends := []backendEntryJSON{
		{ID: 1, VIP: vip, VIPIndex: 0, Address: "198.18.0.21", MAC: clientMAC.String(), State: "active", Weight: 1},
		{ID: 2, VIP: vip, VIPIndex: 0, Address: "198.18.0.22", MAC: "02:00:5e:00:00:22", State: "active", Weight: 2},
	}
	if dump.Interface != dl || dump.Map != "backends" || !equalJSON(wantBackends, dump.Entries) {
		t.Errorf("maps dump backends:\nwant %+v\ngot  %+v (%s, %s)", wantBackends, dump.Entries, dump.Interface, dump.Map)
	}

	var rings dumpOf[[]ringJSON]
	x.json(&rings, "maps", "dump", "rings")
	if len(rings.Entries) != 1 || len(rings.Entries[0].Backends) != 2 {
		t.Fatalf("maps dump rings: %+v", rings)
	}
	r := rings.Entries[0]
	s21, s22 := r.Backends[0].Slots, r.Backends[1].Slots
	if r.Size != 1021 || r.EmptySlots != 0 || s21+s22 != 1021 || r.Backends[0].Address != "198.18.0.21" {
		t.Errorf("ring summary %+v: want 1021 slots over .21 and .22", r)
	}
	if s22 < s21*3/2 {
		t.Errorf("weight-2 backend owns %d slots, weight-1 %d: want about twice", s22, s21)
	}

	// Traffic: the client opens connections to the VIP through d0. The
	// balancer sends them back out to .21 or .22 (whether they arrive
	// does not matter here); the counters and the flow table show them.
	const conns = 24
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client.Do(func() error {
				c, err := net.DialTimeout("tcp", "198.18.1.100:80", 200*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return nil
			})
		}()
	}
	wg.Wait()

	var st statsJSON
	x.json(&st, "stats")
	if st.Interface != dl || len(st.Reasons) != loader.NumReasons || len(st.Events) != loader.NumEvents {
		t.Errorf("stats: interface %q, %d reasons, %d events; want %s, %d, %d",
			st.Interface, len(st.Reasons), len(st.Events), dl, loader.NumReasons, loader.NumEvents)
	}
	// The table leaves out what only the decap program counts; --json
	// has every reason.
	table := x.ok("stats")
	for r := range loader.NumReasons {
		name := loader.Reason(r).String()
		if shown := strings.Contains(table, name+" "); shown == loader.Reason(r).DecapOnly() {
			t.Errorf("stats table shows %s: %v; want it %s", name, shown, map[bool]string{true: "left out", false: "shown"}[loader.Reason(r).DecapOnly()])
		}
	}
	txDR := st.Reasons["tx_dr"]
	if txDR < conns || st.Events["flow_new"] != conns {
		t.Errorf("stats: tx_dr %d, flow_new %d; want at least %d SYNs forwarded, %d new flows", txDR, st.Events["flow_new"], conns, conns)
	}
	if len(st.VIPs) != 1 || st.VIPs[0].VIP != vip || st.VIPs[0].Packets != txDR || st.VIPs[0].Bytes < txDR*54 {
		t.Errorf("stats VIPs %+v: want %s with %d packets", st.VIPs, vip, txDR)
	}
	var perBackend uint64
	for _, b := range st.Backends {
		perBackend += b.Packets
		if b.VIP != vip || (b.Address != "198.18.0.21" && b.Address != "198.18.0.22") {
			t.Errorf("stats backend %+v", b)
		}
	}
	if perBackend != txDR {
		t.Errorf("backend packets sum to %d, tx_dr is %d", perBackend, txDR)
	}

	var flows dumpOf[[]flowJSON]
	x.json(&flows, "maps", "dump", "flows")
	if len(flows.Entries) != conns {
		t.Errorf("maps dump flows: %d flows, want %d", len(flows.Entries), conns)
	}
	for _, f := range flows.Entries {
		src, err := netip.ParseAddrPort(f.Source)
		if err != nil || src.Addr() != netip.MustParseAddr("198.18.0.21") || f.Destination != "198.18.1.100:80" ||
			f.Protocol != "tcp" || (f.Backend != "198.18.0.21" && f.Backend != "198.18.0.22") {
			t.Errorf("flow %+v", f)
		}
	}

	// maps list: every map, with what is used.
	var maps mapsListJSON
	x.json(&maps, "maps", "list")
	used := map[string]uint64{}
	for _, m := range maps.Maps {
		used[m.Name] = m.Entries
		if m.Name == "flows" && m.MaxEntries != 1024 {
			t.Errorf("maps list: flows holds %d, want the 1024 flows of --max-flows", m.MaxEntries)
		}
	}
	for name, want := range map[string]uint64{"vips": 1, "backends": 2, "flows": conns, "rings[0]": 1021} {
		if got, ok := used[name]; !ok || got != want {
			t.Errorf("maps list: %s has %d entries (listed %v), want %d", name, got, ok, want)
		}
	}
	if maps.MemlockBytes == 0 {
		t.Errorf("maps list reports no locked memory")
	}

	// backend set: draining leaves the table.
	x.ok("backend", "set", vip, "198.18.0.22", "--state", "draining")
	x.json(&list, "vip", "list")
	for _, b := range list.VIPs[0].Backends {
		want := map[string]uint32{"198.18.0.21": 1021, "198.18.0.22": 0}[b.Address]
		if b.Slots != want || (b.Address == "198.18.0.22" && b.State != "draining") {
			t.Errorf("after draining .22: %+v, want %d slots", b, want)
		}
	}

	// Next hops the CLI refuses, saying why.
	dir.AddRoute(netip.MustParsePrefix("198.18.5.0/24"), netip.MustParseAddr("198.18.0.21"))
	_, errOut, err = x.run("backend", "add", vip, "198.18.5.7")
	if err == nil || !strings.Contains(errOut, "DR forwarding needs every backend on the link") {
		t.Errorf("DR backend behind a gateway: %v, %q", err, errOut)
	}
	_, errOut, err = x.run("backend", "add", vip, "198.18.0.99", "--arp-timeout", "300ms")
	if err == nil || !strings.Contains(errOut, "no ARP reply from 198.18.0.99 on "+dl+" within 300ms; is the backend up and on this network?") {
		t.Errorf("silent backend: %v, %q", err, errOut)
	}

	// A failover VIP keeps its scheduler across commands: the second
	// backend, with the higher weight, takes every slot.
	const fo = "198.18.1.101/udp"
	x.ok("vip", "add", fo, "--forwarding", "tun", "--scheduler", "failover")
	x.ok("backend", "add", fo, "198.18.0.21")
	x.ok("backend", "add", fo, "198.18.5.7", "--weight", "5") // TUN: the gateway's MAC
	x.json(&list, "vip", "list")
	if len(list.VIPs) != 2 || list.VIPs[1].VIP != fo || list.VIPs[1].Scheduler != "failover" {
		t.Fatalf("vip list after adding %s: %+v", fo, list.VIPs)
	}
	for _, b := range list.VIPs[1].Backends {
		want := map[string]uint32{"198.18.0.21": 0, "198.18.5.7": 1021}[b.Address]
		if b.Slots != want || b.MAC != clientMAC.String() {
			t.Errorf("failover backend %+v: want %d slots and next hop %v", b, want, clientMAC)
		}
	}
	x.ok("vip", "del", fo)

	// backend del, vip del
	x.ok("backend", "del", vip, "198.18.0.21")
	x.json(&dump, "maps", "dump", "backends")
	if len(dump.Entries) != 1 || dump.Entries[0].Address != "198.18.0.22" {
		t.Errorf("after backend del: %+v, want only .22", dump.Entries)
	}
	_, errOut, err = x.run("backend", "del", vip, "198.18.0.21")
	if err == nil || !strings.Contains(errOut, "its backends: 198.18.0.22") {
		t.Errorf("deleting a missing backend: %v, %q; want the backends listed", err, errOut)
	}
	x.ok("vip", "del", vip)
	x.json(&list, "vip", "list")
	if len(list.VIPs) != 0 {
		t.Errorf("after vip del: %+v", list.VIPs)
	}
	_, errOut, err = x.run("vip", "del", vip)
	if err == nil || !strings.Contains(errOut, "has no VIPs") {
		t.Errorf("deleting a missing VIP: %v, %q", err, errOut)
	}

	// detach leaves no pins, and no program on the link.
	x.ok("detach", dl)
	var left []string
	filepath.WalkDir(pinRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != pinRoot {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("detach left pins: %v", left)
	}
	if xdp := dir.Link(dl).Attrs().Xdp; xdp != nil && xdp.Attached {
		t.Errorf("XDP program still attached to %s after detach: %+v", dl, xdp)
	}
	_, errOut, err = x.run("vip", "list")
	if err == nil || !strings.Contains(errOut, "run 'xdplb attach IFACE' first") {
		t.Errorf("vip list after detach: %v, %q", err, errOut)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", ee.ExitCode())
	}
}

// dumpOf is mapDumpJSON with its entries typed.
type dumpOf[T any] struct {
	Interface string `json:"interface"`
	Map       string `json:"map"`
	Entries   T      `json:"entries"`
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
