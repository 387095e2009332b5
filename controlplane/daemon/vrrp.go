package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/config"
	"github.com/xdplb/xdplb/vrrp"
)

// notifyTimeout bounds a notify_master, notify_backup or notify_fault
// command.
const notifyTimeout = 10 * time.Second

// vrrpRunner runs the VRRP instances of a configuration in a vrrp.Router:
// one raw socket, announcer and link tracker per interface, the track
// scripts, and a flag per tracked service that the daemon keeps equal to
// "the service has a backend that takes new flows".
type vrrpRunner struct {
	log     *slog.Logger
	router  *vrrp.Router
	cancel  context.CancelFunc
	done    chan error
	closers []io.Closer
	// flags are the track_services trackers, by service name.
	flags map[string]*vrrp.Flag
	// notify holds each instance's per-state commands.
	notify map[string]map[vrrp.State][]string
	inNS   func(func() error) error
	wg     sync.WaitGroup
	// notifyTimeout bounds each notify command: notifyTimeout, the
	// constant, as startVRRP sets it, or what a test sets.
	notifyTimeout time.Duration
}

// startVRRP starts the instances of cfg, if it has any; nil otherwise.
// serviceUp reports whether a service takes new flows now.
func startVRRP(ctx context.Context, cfg *config.Config, inNS func(func() error) error, log *slog.Logger, serviceUp func(name string) bool) (*vrrpRunner, error) {
	vc := cfg.VRRP
	if len(vc.Instances) == 0 {
		return nil, nil
	}
	v := &vrrpRunner{
		log:    log,
		flags:  map[string]*vrrp.Flag{},
		notify: map[string]map[vrrp.State][]string{},
		inNS:   inNS,

		notifyTimeout: notifyTimeout,
	}
	fail := func(err error) (*vrrpRunner, error) {
		v.close()
		return nil, fmt.Errorf("start VRRP: %w", err)
	}
	type link struct {
		tr  *vrrp.IPv4Transport
		ann *vrrp.NetlinkAnnouncer
	}
	links := map[string]link{}
	trackers := map[string]vrrp.Tracker{}
	var instances []vrrp.InstanceConfig
	for _, in := range vc.Instances {
		l, ok := links[in.Interface]
		if !ok {
			err := inNS(func() error {
				var err error
				if l.tr, err = vrrp.ListenIPv4(in.Interface); err != nil {
					return err
				}
				v.closers = append(v.closers, l.tr)
				if l.ann, err = vrrp.NewAnnouncer(in.Interface); err != nil {
					return err
				}
				v.closers = append(v.closers, l.ann)
				return nil
			})
			if err != nil {
				return fail(fmt.Errorf("instance %s: %w", in.Name, err))
			}
			links[in.Interface] = l
		}
		src := in.UnicastSrcIP
		if !src.IsValid() {
			err := inNS(func() error {
				var err error
				src, err = vrrp.PrimaryIPv4(in.Interface)
				return err
			})
			if err != nil {
				return fail(fmt.Errorf("instance %s: %w", in.Name, err))
			}
		}
		ic := vrrp.InstanceConfig{
			Name:         in.Name,
			Interface:    in.Interface,
			VRID:         in.VirtualRouterID,
			Version:      vrrp.Version(in.Version),
			Priority:     in.Priority,
			Interval:     in.AdvertInterval,
			NoPreempt:    !in.Preempt,
			PreemptDelay: in.PreemptDelay,
			Addresses:    in.VirtualAddresses,
			Source:       src,
			Peers:        in.UnicastPeers,
			Transport:    l.tr,
			Announcer:    l.ann,
			GARP:         vrrp.GARP{Repeat: in.GARPMasterRepeat, Interval: in.GARPInterval, Delay: in.GARPMasterDelay},
			Notify:       in.Notify,
		}
		if in.GARPMasterDelay == 0 {
			ic.GARP.Delay = -1 // 0 in the file: no second burst
		}
		if a := in.Authentication; a != nil && a.Type == config.AuthPass {
			ic.AuthType, ic.Password = vrrp.AuthPass, a.Password
		}
		for _, ifname := range in.TrackInterfaces {
			name := "link:" + ifname
			if _, ok := trackers[name]; !ok {
				var lt *vrrp.LinkTracker
				if err := inNS(func() error {
					var err error
					lt, err = vrrp.NewLinkTracker(ifname)
					return err
				}); err != nil {
					return fail(fmt.Errorf("instance %s: track interface %s: %w", in.Name, ifname, err))
				}
				v.closers = append(v.closers, lt)
				trackers[name] = lt
			}
			ic.Track = append(ic.Track, vrrp.Track{Name: name})
		}
		for _, ts := range in.TrackScripts {
			// Scripts of the same name and definition run once.
			name := fmt.Sprintf("script:%s:%q:%v:%v:%d:%d", ts.Name, ts.Command, ts.Interval, ts.Timeout, ts.Rise, ts.Fall)
			if _, ok := trackers[name]; !ok {
				trackers[name] = &vrrp.ScriptTracker{
					Name: ts.Name, Command: ts.Command, Interval: ts.Interval, Timeout: ts.Timeout,
					Rise: ts.Rise, Fall: ts.Fall, Logger: log,
				}
			}
			ic.Track = append(ic.Track, vrrp.Track{Name: name, Weight: ts.Weight})
		}
		for _, tsv := range in.TrackServices {
			name := "service:" + tsv.Service
			f, ok := v.flags[tsv.Service]
			if !ok {
				f = vrrp.NewFlag(serviceUp(tsv.Service))
				v.flags[tsv.Service] = f
				trackers[name] = f
			}
			ic.Track = append(ic.Track, vrrp.Track{Name: name, Weight: tsv.Weight})
		}
		v.notify[in.Name] = map[vrrp.State][]string{
			vrrp.Master: in.NotifyMaster, vrrp.Backup: in.NotifyBackup, vrrp.Fault: in.NotifyFault,
		}
		instances = append(instances, ic)
	}
	var groups []vrrp.SyncGroup
	for _, g := range vc.SyncGroups {
		groups = append(groups, vrrp.SyncGroup{Name: g.Name, Instances: g.Instances})
	}
	changes := make(chan vrrp.Change, 256)
	r, err := vrrp.NewRouter(vrrp.Config{
		Instances: instances,
		Groups:    groups,
		Trackers:  trackers,
		Logger:    log,
		Changes:   changes,
	})
	if err != nil {
		return fail(err)
	}
	v.router = r
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	v.done = make(chan error, 1)
	go func() {
		err := r.Run(rctx)
		close(changes)
		v.done <- err
	}()
	v.wg.Go(func() {
		for c := range changes {
			v.changed(c)
		}
	})
	log.Info("VRRP started", "instances", len(instances))
	return v, nil
}

// changed runs the per-state notify command of a state change.
func (v *vrrpRunner) changed(c vrrp.Change) {
	argv := v.notify[c.Instance][c.To]
	if len(argv) == 0 {
		return
	}
	v.wg.Go(func() {
		// In the interface's namespace, where the script's own
		// commands (ip, arping) must act.
		err := v.inNS(func() error { return vrrp.RunScript(context.Background(), argv, v.notifyTimeout) })
		if err != nil {
			v.log.Warn("VRRP notify command failed", "instance", c.Instance, "state", c.To.String(),
				"command", strings.Join(argv, " "), "err", err)
		}
	})
}

// setService tells the tracker of a service whether it takes new flows.
func (v *vrrpRunner) setService(name string, up bool) {
	if v == nil {
		return
	}
	if f, ok := v.flags[name]; ok {
		f.Set(up)
	}
}

// stop stops the instances gracefully (a master sends priority 0 and
// releases its addresses) and waits for them.
func (v *vrrpRunner) stop() error {
	if v == nil {
		return nil
	}
	v.cancel()
	err := <-v.done
	v.wg.Wait()
	v.close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop VRRP: %w", err)
	}
	return nil
}

func (v *vrrpRunner) close() {
	for _, c := range slices.Backward(v.closers) {
		c.Close()
	}
	v.closers = nil
}

// status reports the instances and the per-interface counters for the
// API.
func (v *vrrpRunner) status() ([]api.VRRPInstance, []api.VRRPLink) {
	if v == nil {
		return nil, nil
	}
	st := v.router.Status()
	out := make([]api.VRRPInstance, 0, len(st.Instances))
	for _, in := range st.Instances {
		addrs := make([]string, len(in.Addresses))
		for i, a := range in.Addresses {
			addrs[i] = a.String()
		}
		c := in.Counters
		vi := api.VRRPInstance{
			Name:              in.Name,
			Interface:         in.Interface,
			VRID:              in.VRID,
			Version:           uint8(in.Version),
			State:             in.State.String(),
			Priority:          in.Priority,
			EffectivePriority: in.EffectivePriority,
			Group:             in.Group,
			Faults:            in.Faults,
			Addresses:         addrs,
			LastAdvert:        in.LastAdvert,
			Counters: api.VRRPCounters{
				AdvertsSent:       c.AdvertsSent,
				AdvertsReceived:   c.AdvertsReceived,
				Priority0Sent:     c.Priority0Sent,
				Priority0Received: c.Priority0Received,
				SendErrors:        c.SendErrors,
				Transitions:       c.Transitions,
				Drops:             dropNames(c.Drops),
			},
			Transitions: make([]api.VRRPTransition, len(in.Transitions)),
		}
		for i, t := range in.Transitions {
			vi.Transitions[i] = api.VRRPTransition{At: t.At, From: t.From.String(), To: t.To.String(), Cause: string(t.Cause)}
		}
		if in.Master.IsValid() {
			vi.Master = in.Master.String()
		}
		out = append(out, vi)
	}
	links := make([]api.VRRPLink, 0, len(st.Links))
	for _, l := range st.Links {
		links = append(links, api.VRRPLink{
			Interface: l.Interface, Received: l.Received, ReceiveErrors: l.ReceiveErrors, Drops: dropNames(l.Drops),
		})
	}
	return out, links
}

// dropNames keys drop counts by the reasons' stable names.
func dropNames(m map[vrrp.Reason]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for r, n := range m {
		out[r.String()] = n
	}
	return out
}
