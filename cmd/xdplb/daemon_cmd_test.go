package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/internal/netns"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/loader"
)

const checkYAML = `director:
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
    health_check:
      type: http
      path: /healthz
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCheck needs no privileges: it only reads the file.
func TestConfigCheck(t *testing.T) {
	good := writeFile(t, "xdplb.yaml", checkYAML)
	out, _, err := run(t, 0, "config", "check", good)
	if err != nil {
		t.Fatal(err)
	}
	if want := good + ": ok: 1 services, 2 backends, 0 VRRP instances\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	out, _, err = run(t, 0, "config", "check", good, "--effective")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "interval: 2s # default") || !strings.Contains(out, "scheduler: maglev # default") {
		t.Errorf("--effective output lacks the defaults:\n%s", out)
	}

	tests := []struct {
		name, body string
		want       []string
	}{
		{"two problems", strings.Replace(strings.Replace(checkYAML, "forwarding: dr", "forwarding: direct", 1), "weight: 2", "weight: 70000", 1),
			[]string{"xdplb.yaml:8:17: services[0].forwarding:", "xdplb.yaml:12:17: services[0].backends[1].weight:"}},
		{"bad exec template", strings.Replace(checkYAML, "type: http\n      path: /healthz", "type: exec\n      command: [\"/bin/check\", \"{{.Nope}}\"]", 1),
			[]string{"xdplb.yaml:", "services[0].health_check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "xdplb.yaml", tt.body)
			_, _, err := run(t, 0, "config", "check", path)
			if err == nil {
				t.Fatal("accepted")
			}
			if exitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// fakeDaemon answers the CLI from fixed values.
type fakeDaemon struct {
	status    api.Status
	reloadErr error
	drained   []api.BackendRef
}

func (f *fakeDaemon) Status(context.Context) (api.Status, error) { return f.status, nil }
func (f *fakeDaemon) Reload(context.Context) (api.ReloadResult, error) {
	if f.reloadErr != nil {
		return api.ReloadResult{}, f.reloadErr
	}
	return api.ReloadResult{Changes: "services: +dns"}, nil
}
func (f *fakeDaemon) Drain(_ context.Context, r api.BackendRef) (api.Result, error) {
	if r.Service != "web" {
		return api.Result{}, fmt.Errorf("no service %q; services: web: %w", r.Service, api.ErrNotFound)
	}
	f.drained = append(f.drained, r)
	return api.Result{Message: "backend " + r.Backend + " of web drained"}, nil
}
func (f *fakeDaemon) Undrain(context.Context, api.BackendRef) (api.Result, error) {
	return api.Result{Message: "undrained"}, nil
}
func (f *fakeDaemon) AddVIP(context.Context, api.VIPSpec) (api.Result, error) {
	return api.Result{}, nil
}
func (f *fakeDaemon) DeleteVIP(context.Context, api.VIPRef) (api.Result, error) {
	return api.Result{}, nil
}
func (f *fakeDaemon) AddBackend(context.Context, api.BackendSpec) (api.Result, error) {
	return api.Result{}, nil
}
func (f *fakeDaemon) DeleteBackend(context.Context, api.BackendRef) (api.Result, error) {
	return api.Result{}, nil
}
func (f *fakeDaemon) SetBackend(context.Context, api.BackendChange) (api.Result, error) {
	return api.Result{}, nil
}

func serveFake(t *testing.T, d api.Daemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xdplb.sock")
	ln, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, d, nil) }()
	t.Cleanup(func() { cancel(); <-done; ln.Close() })
	return path
}

func TestStatusOutput(t *testing.T) {
	now := time.Now()
	f := &fakeDaemon{status: api.Status{
		Interface: "eth0", Mode: "native", Adopted: true, PinDir: "/sys/fs/bpf/xdplb/eth0",
		Started: now.Add(-time.Hour), ConfigFile: "/etc/xdplb/xdplb.yaml", ConfigLoaded: now.Add(-time.Minute),
		LastReload: &api.ReloadStatus{At: now.Add(-time.Minute), OK: false, Error: "xdplb.yaml:3:14: director.interface: changed"},
		FlowTable:  api.FlowTable{Entries: 1024, Capacity: 65536},
		BPFMemory:  api.BPFMemory{TotalBytes: 3 << 20},
		Services: []api.Service{{
			Name: "web", VIP: "198.18.1.100:80/tcp", Forwarding: "dr", Scheduler: "maglev", HealthCheck: "http",
			Origin: "config", ActiveBackends: 0, Dataplane: "no backend takes new flows: the data plane drops every packet to the VIP (reason drop_no_backend), established flows included",
			Backends: []api.Backend{
				{Address: "198.18.0.21", State: "down", Health: "down", Weight: 1, MAC: "02:00:00:00:00:21", Reason: "health check failing", LastCheckError: "status 503"},
				{Address: "198.18.0.22", State: "draining", Health: "up", Weight: 2, MAC: "02:00:00:00:00:22", Reason: "drained by an operator", Admin: "draining", Packets: 123456, Bytes: 7 << 20},
			},
		}},
		Notes: []string{"service web (198.18.1.100:80/tcp): no backend takes new flows"},
		VRRP: []api.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, State: "BACKUP", Priority: 150, EffectivePriority: 100,
			Master: "198.18.0.11", Addresses: []string{"198.18.1.100/32"}}},
	}}
	sock := serveFake(t, f)
	out, _, err := run(t, allCaps, "status", "--socket", sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"xdplb on eth0 (native mode, adopted the pinned program, pins in /sys/fs/bpf/xdplb/eth0), up 1h0m0s",
		"last reload 1m0s ago: REFUSED, previous configuration in force:\n  xdplb.yaml:3:14: director.interface: changed",
		"flow table 1024 of 65536 entries (1.6%), BPF maps 3.0 MiB",
		"web  198.18.1.100:80/tcp  dr, maglev, check http  0/2 active",
		"!! no backend takes new flows: the data plane drops every packet to the VIP (reason drop_no_backend)",
		"198.18.0.21  down      down    1       02:00:00:00:00:21  0        0 B      health check failing: status 503",
		"198.18.0.22  draining  up      2       02:00:00:00:00:22  123k     7.0 MiB  drained by an operator",
		"note: service web",
		"VI_1  eth0   51    BACKUP  100 (configured 150)  198.18.0.11  198.18.1.100/32  -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, allCaps, "status", "--socket", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got api.Status
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if got.Services[0].Backends[1].Admin != "draining" || got.FlowTable.Entries != 1024 {
		t.Errorf("--json decoded to %+v", got)
	}
}

func TestReloadAndDrainCommands(t *testing.T) {
	f := &fakeDaemon{}
	sock := serveFake(t, f)
	out, _, err := run(t, allCaps, "reload", "--socket", sock)
	if err != nil || out != "reloaded: services: +dns\n" {
		t.Errorf("reload = %q, %v", out, err)
	}
	f.reloadErr = fmt.Errorf("configuration refused, nothing changed:\nxdplb.yaml:9:17: services[0].forwarding: bad: %w", api.ErrConfig)
	_, _, err = run(t, allCaps, "reload", "--socket", sock)
	if err == nil || !strings.Contains(err.Error(), "xdplb.yaml:9:17: services[0].forwarding: bad") || exitCode(err) != 1 {
		t.Errorf("refused reload: %v (exit %d), want the problem and exit 1", err, exitCode(err))
	}

	out, _, err = run(t, allCaps, "backend", "drain", "web", "198.18.0.21", "--socket", sock)
	if err != nil || !strings.Contains(out, "drained") || len(f.drained) != 1 || f.drained[0].Backend != "198.18.0.21" {
		t.Errorf("drain = %q, %v; daemon got %+v", out, err, f.drained)
	}
	_, _, err = run(t, allCaps, "backend", "drain", "api", "198.18.0.21", "--socket", sock)
	if !errors.Is(err, api.ErrNotFound) {
		t.Errorf("drain of an unknown service: %v", err)
	}

	// No daemon: say so, and what to do instead.
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"status"}, {"reload"}, {"backend", "drain", "web", "198.18.0.21"}} {
		_, _, err := run(t, allCaps, append(args, "--socket", missing)...)
		if !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "xdplb run --config") {
			t.Errorf("%v without a daemon: %v", args, err)
		}
	}
	// Not root: refused before dialing.
	if _, _, err := run(t, 0, "status", "--socket", sock); !errors.Is(err, errNeedRoot) {
		t.Errorf("status without privileges: %v", err)
	}
}

// daemonSetup is what a test of the built daemon runs on: a director
// namespace linked by veth to a backend namespace holding 198.18.0.21
// and .22, a bpffs pin root removed (program detached first) when the
// test ends, and the paths of the daemon's socket and config file in a
// temporary directory.
type daemonSetup struct {
	bin      string
	dns, bns *netns.NS
	dl, bl   string // director's and backend's end of the veth pair
	pinRoot  string
	dir      string
	socket   string
	config   string
}

// newDaemonSetup makes the namespaces, through netns.New, and builds the
// binary.
func newDaemonSetup(t *testing.T) daemonSetup {
	t.Helper()
	env := netns.New(t)
	bin := buildCLI(t)
	dns, bns := env.NS("dir"), env.NS("be")
	dl, bl := env.Veth(dns, "d0", bns, "b0")
	dns.AddAddr(dl, netip.MustParsePrefix("198.18.0.10/24"))
	bns.AddAddr(bl, netip.MustParsePrefix("198.18.0.21/24"))
	bns.AddAddr(bl, netip.MustParsePrefix("198.18.0.22/24"))
	pinRoot := filepath.Join("/sys/fs/bpf", env.Prefix())
	t.Cleanup(func() {
		loader.Detach(dl, pinRoot)
		os.RemoveAll(pinRoot)
	})
	dir := t.TempDir()
	return daemonSetup{
		bin: bin, dns: dns, bns: bns, dl: dl, bl: bl,
		pinRoot: pinRoot, dir: dir,
		socket: filepath.Join(dir, "xdplb.sock"),
		config: filepath.Join(dir, "xdplb.yaml"),
	}
}

// daemonProc is the built binary running `xdplb run`.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startDaemonProc(t *testing.T, bin string, ns *netns.NS, config, socket string) *daemonProc {
	t.Helper()
	p := &daemonProc{stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	if err := ns.Do(func() error {
		p.cmd = exec.Command(bin, "run", "--config", config)
		p.cmd.Stderr = p.stderr
		return p.cmd.Start()
	}); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	// Ready once the API answers.
	c := api.NewClient(socket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("daemon exited: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not answering after 30s: %v\n%s", err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *daemonProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *daemonProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit\n%s", p.stderr)
		return nil
	}
}

// TestDaemonSIGKILL runs the built binary as an operator would: a drain,
// flows, SIGKILL, a restart that picks up the same flows and the drain,
// a reload by SIGHUP (a bad file refused, a good one applied), and SIGTERM,
// after which the data plane still forwards.
func TestDaemonSIGKILL(t *testing.T) {
	d := newDaemonSetup(t)
	bin, dns, bns, dl, bl := d.bin, d.dns, d.bns, d.dl, d.bl
	pinRoot, dir, socket, config := d.pinRoot, d.dir, d.socket, d.config
	body := fmt.Sprintf(`director:
  interface: %s
  api_socket: %s
  state_dir: %s
  pin_root: %s
  log_format: json
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
      type: none
`, dl, socket, filepath.Join(dir, "state"), pinRoot)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	status := func() api.Status {
		t.Helper()
		out, _, err := run(t, allCaps, "status", "--json", "--socket", socket)
		if err != nil {
			t.Fatal(err)
		}
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	backend := func(st api.Status, addr string) api.Backend {
		for _, b := range st.Services[0].Backends {
			if b.Address == addr {
				return b
			}
		}
		t.Fatalf("no backend %s in %+v", addr, st)
		return api.Backend{}
	}

	p1 := startDaemonProc(t, bin, dns, config, socket)
	if _, _, err := run(t, allCaps, "backend", "drain", "web", "198.18.0.21", "--socket", socket); err != nil {
		t.Fatal(err)
	}
	bal, err := loader.Open(dl, pinRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	vip := netip.MustParseAddr("198.18.1.100")
	flows := map[netip.AddrPort]uint32{}
	for i := range 100 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), uint16(30000+i))
		ip := packet.IPv4{TTL: 64, Src: src.Addr(), Dst: vip}
		frame := packet.Frame(packet.Ethernet{Dst: dns.MAC(dl), Src: bns.MAC(bl)},
			packet.TCPPacket(ip, packet.TCP{SrcPort: src.Port(), DstPort: 80, Flags: packet.TCPSyn}, nil))
		out := make([]byte, len(frame)+64)
		if ret, err := bal.Program().Run(&ebpf.RunOptions{Data: frame, DataOut: out}); err != nil || loader.XDPAction(ret) != loader.XDPTx {
			t.Fatalf("SYN %d: %v %v", i, loader.XDPAction(ret), err)
		}
	}
	bal.Flows(func(f loader.Flow) bool { flows[f.Src] = f.BackendID; return true })
	drainedID := backend(status(), "198.18.0.21").ID

	p1.signal(t, syscall.SIGKILL)
	p1.wait(t)
	p2 := startDaemonProc(t, bin, dns, config, socket)
	st := status()
	if !st.Adopted {
		t.Error("restarted daemon did not adopt the pins")
	}
	if b := backend(st, "198.18.0.21"); b.State != "draining" || b.Admin != "draining" || b.ID != drainedID {
		t.Errorf("drained backend after SIGKILL and restart: %+v", b)
	}
	bal.Flows(func(f loader.Flow) bool {
		if id, ok := flows[f.Src]; ok && id == f.BackendID {
			delete(flows, f.Src)
		}
		return true
	})
	if len(flows) != 0 {
		t.Errorf("%d of 100 flows lost or moved across SIGKILL and restart", len(flows))
	}

	// SIGHUP with a bad file: refused, nothing changes.
	if err := os.WriteFile(config, []byte(strings.Replace(body, "forwarding: dr", "forwarding: nat", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p2.signal(t, syscall.SIGHUP)
	var r *api.ReloadStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r = status().LastReload; r != nil {
			break
		}
	}
	if r == nil || r.OK || !strings.Contains(r.Error, "services[0].forwarding") {
		t.Errorf("after SIGHUP with a bad file, last reload = %+v", r)
	}
	// SIGHUP with a good one: a backend added.
	if err := os.WriteFile(config, []byte(strings.Replace(body, "      - address: 198.18.0.22\n", "      - address: 198.18.0.22\n      - address: 198.18.0.23\n        weight: 0\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p2.signal(t, syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r = status().LastReload; r != nil && r.OK {
			break
		}
	}
	if r == nil || !r.OK || len(status().Services[0].Backends) != 3 {
		t.Errorf("after SIGHUP with a good file: last reload %+v, backends %+v", r, status().Services[0].Backends)
	}

	// SIGTERM: a clean exit, the program stays.
	p2.signal(t, syscall.SIGTERM)
	if err := p2.wait(t); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, p2.stderr)
	}
	if _, err := loader.Open(dl, pinRoot); err != nil {
		t.Errorf("after the daemon stopped, the pins are gone: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(p2.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON (log_format: json): %q", line)
		}
	}
	if !strings.Contains(p2.stderr.String(), "adopted the pinned data plane") || !strings.Contains(p2.stderr.String(), "reload refused") {
		t.Errorf("log lacks adoption or the refusal:\n%s", p2.stderr)
	}
}
