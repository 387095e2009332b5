package vrrp_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/xdplb/xdplb/vrrp"
)

// A director in the shape of a keepalived vrrp_instance: VRRPv3 at 100ms on
// eth0, two virtual addresses, a track script that lowers the priority by
// 50 when it fails, the link itself tracked without weight (Fault when it
// goes down) and a notify command. The daemon would build this from its
// YAML configuration.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	const ifname = "eth0"

	tr, err := vrrp.ListenIPv4(ifname) // one socket per interface, shared by its instances
	if err != nil {
		log.Error("vrrp", "err", err)
		return
	}
	defer tr.Close()
	ann, err := vrrp.NewAnnouncer(ifname)
	if err != nil {
		log.Error("vrrp", "err", err)
		return
	}
	defer ann.Close()
	src, err := vrrp.PrimaryIPv4(ifname) // or unicast_src_ip
	if err != nil {
		log.Error("vrrp", "err", err)
		return
	}
	link, err := vrrp.NewLinkTracker(ifname)
	if err != nil {
		log.Error("vrrp", "err", err)
		return
	}
	healthy := vrrp.NewFlag(true) // e.g. "this service still has a healthy backend"

	changes := make(chan vrrp.Change, 64)
	r, err := vrrp.NewRouter(vrrp.Config{
		Logger: log,
		Instances: []vrrp.InstanceConfig{{
			Name: "VI_1", Interface: ifname, VRID: 51, Version: vrrp.V3,
			Priority: 150, Interval: 100 * time.Millisecond,
			Addresses: []netip.Prefix{
				netip.MustParsePrefix("198.18.1.100/32"),
				netip.MustParsePrefix("198.18.1.101/32"),
			},
			Source:    src,
			Transport: tr, Announcer: ann,
			Track: []vrrp.Track{
				{Name: "chk_httpd", Weight: -50},
				{Name: ifname, Weight: 0},
				{Name: "backends", Weight: -100},
			},
			Notify: []string{"/etc/xdplb/notify.sh"},
		}},
		Trackers: map[string]vrrp.Tracker{
			"chk_httpd": &vrrp.ScriptTracker{
				Name: "chk_httpd", Command: []string{"/usr/bin/pgrep", "-x", "httpd"},
				Interval: 2 * time.Second, Rise: 2, Fall: 2, Logger: log,
			},
			ifname:     link,
			"backends": healthy,
		},
		Changes: changes,
	})
	if err != nil {
		log.Error("vrrp", "err", err)
		return
	}
	go func() {
		for c := range changes {
			log.Info("vrrp change", "instance", c.Instance, "state", c.To.String())
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Run returns after a graceful shutdown: a master sends priority 0 and
	// releases its addresses.
	if err := r.Run(ctx); err != nil {
		log.Error("vrrp", "err", err)
	}
	in, _ := r.Status().Instance("VI_1")
	log.Info("vrrp stopped", "state", in.State.String(), "adverts_sent", in.Counters.AdvertsSent)
}
