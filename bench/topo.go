package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// topo is the live section's network: two namespaces of its own, "dir"
// (the director, where frames are injected) and "peer", joined by a veth
// pair. Nothing is created outside them. internal/netns builds the same for
// tests but is bound to testing.TB, so the command builds it with ip(8).
type topo struct {
	prefix          string
	dirNS, peerNS   string
	dirIf, peerIf   string
	dirIndex        int
	peerIndex       int
	dirMAC, peerMAC net.HardwareAddr
}

// newTopo creates the namespaces and the veth pair and brings it up. Close
// removes everything, also after a partial failure.
func newTopo(ctx context.Context) (*topo, error) {
	p, err := randomName("xb")
	if err != nil {
		return nil, fmt.Errorf("topology name: %w", err)
	}
	t := &topo{prefix: p, dirNS: p + "dir", peerNS: p + "peer", dirIf: p + "d", peerIf: p + "p"}
	steps := [][]string{
		{"netns", "add", t.dirNS},
		{"netns", "add", t.peerNS},
		// No IPv6 on the links: router solicitations and neighbour
		// discovery would add frames the peer counts.
		{"netns", "exec", t.dirNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"netns", "exec", t.peerNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"-n", t.dirNS, "link", "add", t.dirIf, "type", "veth", "peer", "name", t.peerIf, "netns", t.peerNS},
		{"-n", t.dirNS, "link", "set", "lo", "up"},
		{"-n", t.peerNS, "link", "set", "lo", "up"},
		{"-n", t.dirNS, "link", "set", t.dirIf, "up"},
		{"-n", t.peerNS, "link", "set", t.peerIf, "up"},
	}
	for _, args := range steps {
		if _, err := ip(ctx, args...); err != nil {
			t.Close()
			return nil, err
		}
	}
	if t.dirIndex, t.dirMAC, err = linkInfo(ctx, t.dirNS, t.dirIf); err != nil {
		t.Close()
		return nil, err
	}
	if t.peerIndex, t.peerMAC, err = linkInfo(ctx, t.peerNS, t.peerIf); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close deletes both namespaces, and with them the veth pair.
func (t *topo) Close() error {
	var errs []error
	for _, ns := range []string{t.dirNS, t.peerNS} {
		if !netnsExists(ns) {
			continue
		}
		if _, err := ip(context.Background(), "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inNS runs fn on an OS thread inside namespace name and returns its error.
// If the thread cannot be moved back, it is left locked, so the Go runtime
// retires it instead of reusing it elsewhere.
func inNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func netnsExists(name string) bool {
	h, err := netns.GetFromName(name)
	if err != nil {
		return false
	}
	h.Close()
	return true
}

// ip runs ip(8) with args and returns its output.
func ip(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// linkInfo returns the index and MAC address of link dev in namespace ns.
func linkInfo(ctx context.Context, ns, dev string) (int, net.HardwareAddr, error) {
	out, err := ip(ctx, "-n", ns, "-j", "link", "show", "dev", dev)
	if err != nil {
		return 0, nil, err
	}
	var links []struct {
		Index   int    `json:"ifindex"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, nil, fmt.Errorf("parse ip link output for %s: %v: %s", dev, err, out)
	}
	mac, err := net.ParseMAC(links[0].Address)
	if err != nil {
		return 0, nil, fmt.Errorf("MAC of %s: %w", dev, err)
	}
	return links[0].Index, mac, nil
}
