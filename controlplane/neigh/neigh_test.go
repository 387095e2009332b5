package neigh

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/netns"
)

// topology is a director namespace with link dir (198.18.0.1/24) to a
// backend namespace whose link be (198.18.0.21/24) answers ARP, and a
// second director link side (198.18.2.1/24) to a namespace with no
// address, which answers nothing.
type topology struct {
	dir, backend *netns.NS
	dirLink      string
	sideLink     string
	backendMAC   net.HardwareAddr
}

func newTopology(t *testing.T) topology {
	t.Helper()
	env := netns.New(t)
	dir, backend, quiet := env.NS("dir"), env.NS("be"), env.NS("q")
	dl, bl := env.Veth(dir, "d0", backend, "b0")
	sl, _ := env.Veth(dir, "d1", quiet, "q0")
	dir.AddAddr(dl, netip.MustParsePrefix("198.18.0.1/24"))
	dir.AddAddr(sl, netip.MustParsePrefix("198.18.2.1/24"))
	backend.AddAddr(bl, netip.MustParsePrefix("198.18.0.21/24"))
	return topology{dir: dir, backend: backend, dirLink: dl, sideLink: sl, backendMAC: backend.MAC(bl)}
}

// resolve runs Resolve inside the director namespace.
func (tp topology) resolve(t *testing.T, r *Resolver, iface, addr string) (Result, error) {
	t.Helper()
	var res Result
	err := tp.dir.Do(func() error {
		var err error
		res, err = r.Resolve(context.Background(), iface, netip.MustParseAddr(addr))
		return err
	})
	return res, err
}

func TestResolve(t *testing.T) {
	tp := newTopology(t)
	fixed := net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x42}
	tp.dir.SetNeigh(tp.dirLink, netip.MustParseAddr("198.18.0.42"), fixed)
	tp.dir.AddRoute(netip.MustParsePrefix("198.18.5.0/24"), netip.MustParseAddr("198.18.0.21"))
	r := &Resolver{Timeout: 600 * time.Millisecond}

	tests := []struct {
		name string
		addr string
		want Result
	}{
		{
			name: "on-link, not in the table: ARP",
			addr: "198.18.0.21",
			want: Result{MAC: tp.backendMAC, NextHop: netip.MustParseAddr("198.18.0.21"), Source: FromARP},
		},
		{
			// The entry names a MAC nobody owns: only the table can give it.
			name: "in the table: no ARP",
			addr: "198.18.0.42",
			want: Result{MAC: fixed, NextHop: netip.MustParseAddr("198.18.0.42"), Source: FromNeighbourTable},
		},
		{
			name: "behind a gateway: the gateway's MAC",
			addr: "198.18.5.7",
			want: Result{MAC: tp.backendMAC, NextHop: netip.MustParseAddr("198.18.0.21"), Gateway: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tp.resolve(t, r, tp.dirLink, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Source == "" {
				tt.want.Source = got.Source // either, depending on what ran before
			}
			if tt.want.MAC.String() != got.MAC.String() || tt.want.NextHop != got.NextHop ||
				tt.want.Gateway != got.Gateway || tt.want.Source != got.Source {
				t.Errorf("Resolve(%s):\nwant %+v\ngot  %+v", tt.addr, tt.want, got)
			}
		})
	}
}

func TestResolveIncompleteEntryFallsBackToARP(t *testing.T) {
	tp := newTopology(t)
	// A failed entry, as the kernel leaves after an unanswered probe.
	link := tp.dir.Link(tp.dirLink)
	err := tp.dir.Netlink().NeighSet(&netlink.Neigh{
		LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_FAILED, IP: net.ParseIP("198.18.0.21"),
	})
	if err != nil {
		t.Fatalf("add failed neighbour entry: %v", err)
	}
	got, err := tp.resolve(t, &Resolver{Timeout: 600 * time.Millisecond}, tp.dirLink, "198.18.0.21")
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != FromARP || got.MAC.String() != tp.backendMAC.String() {
		t.Errorf("got %+v, want %v from ARP", got, tp.backendMAC)
	}
}

func TestResolveErrors(t *testing.T) {
	tp := newTopology(t)
	const timeout = 300 * time.Millisecond
	r := &Resolver{Timeout: timeout}

	tests := []struct {
		name     string
		iface    string
		addr     string
		wantErr  error
		wantMsgs []string
	}{
		{
			name: "nobody answers", iface: tp.dirLink, addr: "198.18.0.99", wantErr: ErrNoReply,
			wantMsgs: []string{"no ARP reply from 198.18.0.99 on " + tp.dirLink + " within 300ms; is the backend up and on this network?"},
		},
		{
			name: "gateway does not answer", iface: tp.sideLink, addr: "198.18.7.1", wantErr: ErrNoReply,
			wantMsgs: []string{"gateway 198.18.2.9 (next hop to 198.18.7.1)", "is the gateway up"},
		},
		{
			name: "routed through another interface", iface: tp.dirLink, addr: "198.18.2.5", wantErr: ErrOtherInterface,
			wantMsgs: []string{"sends it through " + tp.sideLink, "attach to " + tp.sideLink},
		},
		{
			name: "address of this host", iface: tp.dirLink, addr: "198.18.2.1", wantErr: ErrOtherInterface,
			wantMsgs: []string{"an address of this host"},
		},
		{
			name: "unknown interface", iface: "nosuch0", addr: "198.18.0.21", wantErr: ErrUnknownInterface,
			wantMsgs: []string{`"nosuch0"`, "ip link"},
		},
		{
			name: "no route", iface: tp.dirLink, addr: "198.19.200.9",
			wantMsgs: []string{"no route", "add an address or route"},
		},
	}
	tp.dir.AddRoute(netip.MustParsePrefix("198.18.7.0/24"), netip.MustParseAddr("198.18.2.9"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := tp.resolve(t, r, tt.iface, tt.addr)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Resolve succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want errors.Is %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			// The upper margin only has to tell "gave up at the timeout"
			// from "hung": a loaded CI machine delays the wake-up by
			// hundreds of milliseconds, never by seconds.
			if errors.Is(err, ErrNoReply) && (elapsed < timeout || elapsed > timeout+time.Second) {
				t.Errorf("gave up after %v, want %v (+1s)", elapsed, timeout)
			}
		})
	}
}

func TestResolveStopsWithContext(t *testing.T) {
	tp := newTopology(t)
	r := &Resolver{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tp.dir.Do(func() error {
		_, err := r.Resolve(ctx, tp.dirLink, netip.MustParseAddr("198.18.0.99"))
		return err
	})
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Resolve returned after %v, want about 200ms (the context's deadline)", elapsed)
	}
	if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "within 200ms") {
		t.Errorf("error %v, want ErrNoReply saying how long it waited (200ms)", err)
	}

	// Cancelled, not timed out: the cancellation is the error.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err = tp.dir.Do(func() error {
		_, err := r.Resolve(ctx, tp.dirLink, netip.MustParseAddr("198.18.0.99"))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
