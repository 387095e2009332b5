package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
)

// TestMapCommandsWithDaemon runs the map commands of the built binary, one
// process each, while the built binary's daemon runs and holds the maps'
// lock: each goes through the API without waiting on the lock, and its
// change shows both in the daemon's status and in the maps (read by
// 'xdplb vip list', which needs no lock). A command given a socket no
// daemon answers on gives up after lockWait, naming the daemon; once the
// daemon has stopped, the commands write the maps themselves.
func TestMapCommandsWithDaemon(t *testing.T) {
	d := newDaemonSetup(t)
	bin, dns, bns, dl, bl := d.bin, d.dns, d.bns, d.dl, d.bl
	pinRoot, dir, socket, config := d.pinRoot, d.dir, d.socket, d.config
	const ringSize = 1021
	body := fmt.Sprintf(`director:
  interface: %s
  api_socket: %s
  state_dir: %s
  pin_root: %s
  max_flows: 4096
  ring_size: %d
services:
  - name: web
    vip: 198.18.1.50
    port: 80
    forwarding: dr
    backends:
      - address: 198.18.0.21
    health_check:
      type: none
`, dl, socket, filepath.Join(dir, "state"), pinRoot, ringSize)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := startDaemonProc(t, bin, dns, config, socket)
	x := cli{t: t, bin: bin, ns: dns, pinRoot: pinRoot}
	const vip = "198.18.1.100:80/tcp"
	beMAC := bns.MAC(bl).String()

	// change runs a command that must go through the daemon at once.
	change := func(args ...string) string {
		t.Helper()
		start := time.Now()
		out, errOut, err := x.run(append(args, "--socket", socket, "--verbose")...)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("xdplb %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
		}
		if took >= lockWait {
			t.Errorf("xdplb %s took %v: it waited on the maps' lock", strings.Join(args, " "), took)
		}
		if want := "via daemon at " + socket; !strings.Contains(errOut, want) {
			t.Errorf("xdplb %s --verbose said %q, want %q", strings.Join(args, " "), errOut, want)
		}
		return out
	}
	// seen returns the VIP as the daemon's status and the maps show it;
	// ok is false where it is absent.
	type seen struct {
		svc    api.Service
		inAPI  bool
		mapped vipJSON
		inMaps bool
	}
	look := func() seen {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := api.NewClient(socket).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var s seen
		for _, svc := range st.Services {
			if svc.VIP == vip {
				s.svc, s.inAPI = svc, true
			}
		}
		var list vipListJSON
		x.json(&list, "vip", "list")
		for _, v := range list.VIPs {
			if v.VIP == vip {
				s.mapped, s.inMaps = v, true
			}
		}
		if len(list.VIPs) != len(st.Services) {
			t.Errorf("the maps hold %d VIPs, the daemon %d services", len(list.VIPs), len(st.Services))
		}
		return s
	}
	apiBackend := func(s seen, addr string) (api.Backend, bool) {
		for _, b := range s.svc.Backends {
			if b.Address == addr {
				return b, true
			}
		}
		return api.Backend{}, false
	}
	mapBackend := func(s seen, addr string) (backendJSON, bool) {
		for _, b := range s.mapped.Backends {
			if b.Address == addr {
				return b, true
			}
		}
		return backendJSON{}, false
	}

	out := change("vip", "add", vip, "--forwarding", "dr")
	if !strings.Contains(out, "VIP "+vip+" added") {
		t.Errorf("vip add printed %q, want the daemon's answer", out)
	}
	s := look()
	if !s.inAPI || s.svc.Origin != "runtime" || s.svc.Forwarding != "dr" || len(s.svc.Backends) != 0 {
		t.Errorf("after vip add, the daemon has %+v (present %v), want a runtime dr service without backends", s.svc, s.inAPI)
	}
	if !s.inMaps || s.mapped.Forwarding != "dr" || s.mapped.Scheduler != "maglev" || len(s.mapped.Backends) != 0 {
		t.Errorf("after vip add, the maps hold %+v (present %v)", s.mapped, s.inMaps)
	}

	change("backend", "add", vip, "198.18.0.21", "--mac", "02:00:5e:00:00:21", "--weight", "2")
	s = look()
	if b, ok := apiBackend(s, "198.18.0.21"); !ok || b.MAC != "02:00:5e:00:00:21" || b.Weight != 2 || b.State != "active" {
		t.Errorf("after backend add --mac, the daemon has %+v (present %v)", b, ok)
	}
	if b, ok := mapBackend(s, "198.18.0.21"); !ok || b.MAC != "02:00:5e:00:00:21" || b.Weight != 2 || b.State != "active" || b.Slots != ringSize {
		t.Errorf("after backend add --mac, the maps hold %+v (present %v), want it with all %d slots", b, ok, ringSize)
	}

	// Without --mac, the daemon asks the backend by ARP.
	change("backend", "add", vip, "198.18.0.22")
	s = look()
	if b, ok := apiBackend(s, "198.18.0.22"); !ok || b.MAC != beMAC || b.State != "active" {
		t.Errorf("after backend add, the daemon has %+v (present %v), want next hop %s", b, ok, beMAC)
	}
	b21, _ := mapBackend(s, "198.18.0.21")
	b22, ok := mapBackend(s, "198.18.0.22")
	if !ok || b22.MAC != beMAC || b22.Slots == 0 || b21.Slots+b22.Slots != ringSize || b21.Slots < b22.Slots {
		t.Errorf("after backend add, the maps hold %+v and %+v: want both in the table, .21 (weight 2) with more slots", b21, b22)
	}

	change("backend", "set", vip, "198.18.0.21", "--state", "draining")
	s = look()
	if b, ok := apiBackend(s, "198.18.0.21"); !ok || b.State != "draining" || b.Admin != "draining" {
		t.Errorf("after backend set --state draining, the daemon has %+v (present %v)", b, ok)
	}
	b21, _ = mapBackend(s, "198.18.0.21")
	b22, _ = mapBackend(s, "198.18.0.22")
	if b21.State != "draining" || b21.Slots != 0 || b22.Slots != ringSize {
		t.Errorf("after draining .21, the maps hold %+v and %+v: want .21 draining without slots", b21, b22)
	}

	change("backend", "del", vip, "198.18.0.22")
	s = look()
	if _, ok := apiBackend(s, "198.18.0.22"); ok || len(s.svc.Backends) != 1 {
		t.Errorf("after backend del, the daemon has %+v", s.svc.Backends)
	}
	if _, ok := mapBackend(s, "198.18.0.22"); ok || len(s.mapped.Backends) != 1 {
		t.Errorf("after backend del, the maps hold %+v", s.mapped.Backends)
	}

	change("vip", "del", vip)
	if s = look(); s.inAPI || s.inMaps {
		t.Errorf("after vip del, the daemon has it: %v, the maps: %v", s.inAPI, s.inMaps)
	}

	// Told a socket where no daemon answers, a command finds the lock the
	// daemon holds and gives up, naming it.
	wrong := filepath.Join(dir, "other.sock")
	start := time.Now()
	_, errOut, err := x.run("vip", "add", vip, "--forwarding", "dr", "--socket", wrong)
	took := time.Since(start)
	if err == nil {
		t.Fatal("vip add with a wrong --socket succeeded while the daemon holds the maps")
	}
	if took < lockWait || took > lockWait+5*time.Second {
		t.Errorf("vip add with a wrong --socket gave up after %v, want %v", took, lockWait)
	}
	for _, want := range []string{
		fmt.Sprintf("held by pid %d (%s run --config %s)", daemon.cmd.Process.Pid, bin, config),
		"no daemon answers on " + wrong,
		"--socket",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("vip add with a wrong --socket said %q, want %q", errOut, want)
		}
	}

	// The daemon stops: the commands write the maps themselves.
	daemon.signal(t, syscall.SIGTERM)
	if err := daemon.wait(t); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, daemon.stderr)
	}
	for _, args := range [][]string{
		{"vip", "add", vip, "--forwarding", "dr"},
		{"backend", "add", vip, "198.18.0.22", "--mac", "02:00:5e:00:00:22"},
	} {
		_, errOut, err := x.run(append(args, "--socket", socket, "--verbose")...)
		if err != nil {
			t.Fatalf("xdplb %s without a daemon: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		if want := "writing maps directly: no daemon answers on " + socket; !strings.Contains(errOut, want) {
			t.Errorf("xdplb %s --verbose said %q, want %q", strings.Join(args, " "), errOut, want)
		}
	}
	var list vipListJSON
	x.json(&list, "vip", "list")
	var found bool
	for _, v := range list.VIPs {
		if v.VIP == vip {
			found = true
			if len(v.Backends) != 1 || v.Backends[0].MAC != "02:00:5e:00:00:22" || v.Backends[0].Slots != ringSize {
				t.Errorf("written without the daemon: %+v", v)
			}
		}
	}
	if !found {
		t.Errorf("vip add without the daemon: the maps hold %+v", list.VIPs)
	}
}
