package vrrp

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	vipP1 = netip.MustParsePrefix("198.18.1.100/32")
	vipP2 = netip.MustParsePrefix("198.18.1.101/32")
	addrC = netip.MustParseAddr("198.18.0.3")
)

func baseInstance(tr Transport, ann Announcer) InstanceConfig {
	return InstanceConfig{
		Name: "VI_1", Interface: "eth0", VRID: 51, Version: V3, Priority: 100,
		Interval:  100 * time.Millisecond,
		Addresses: []netip.Prefix{vipP1, vipP2},
		Source:    addrA,
		Transport: tr, Announcer: ann,
	}
}

// newTestRouter builds a Router from instance configs and starts them at
// t0 without running its loop: tests drive it by calling the handlers with
// explicit times.
func newTestRouter(t *testing.T, cfg Config) *Router {
	t.Helper()
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	r.startReady(t0)
	r.publish()
	return r
}

func (r *Router) inst(name string) *instance {
	for _, i := range r.insts {
		if i.cfg.Name == name {
			return i
		}
	}
	panic("no instance " + name)
}

func (r *Router) tracker(name string) *tracker {
	for _, t := range r.trackers {
		if t.name == name {
			return t
		}
	}
	panic("no tracker " + name)
}

func mustMarshal(t *testing.T, a Advertisement, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := a.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func v3Advert(prio uint8, addrs ...netip.Addr) Advertisement {
	if len(addrs) == 0 {
		addrs = []netip.Addr{vip1, vip2}
	}
	return Advertisement{Version: V3, VRID: 51, Priority: prio, Interval: 10, Addresses: addrs}
}

func packet(t *testing.T, a Advertisement, src, dst netip.Addr) Packet {
	return Packet{Src: src, Dst: dst, TTL: TTL, Payload: mustMarshal(t, a, src, dst)}
}

func (r *Router) receive(now time.Time, tr Transport, p Packet) {
	for _, l := range r.links {
		if l.tr == tr {
			r.handleReceived(now, received{link: l, pkt: p})
			r.publish()
			return
		}
	}
	panic("unknown transport")
}

func TestRouterDrops(t *testing.T) {
	pw, _ := Password("s3cr3t")
	v2pass := func(c *InstanceConfig) {
		c.Version, c.Interval, c.AuthType, c.Password = V2, time.Second, AuthPass, "s3cr3t"
	}
	v2adv := func(auth AuthType, data [8]byte, interval uint16) Advertisement {
		return Advertisement{Version: V2, VRID: 51, Priority: 150, Interval: interval, AuthType: auth, AuthData: data, Addresses: []netip.Addr{vip1, vip2}}
	}
	unicast := func(c *InstanceConfig) { c.Peers = []netip.Addr{addrB} }
	good := func(t *testing.T) Packet { return packet(t, v3Advert(150), addrB, Group()) }

	tests := []struct {
		name   string
		config func(*InstanceConfig)
		pkt    func(t *testing.T) Packet
		want   Reason
		link   bool // counted on the link, before any instance claims it
	}{
		{"ttl 254", nil, func(t *testing.T) Packet { p := good(t); p.TTL = 254; return p }, ReasonTTL, false},
		{"ttl 1 unicast", unicast, func(t *testing.T) Packet {
			p := packet(t, v3Advert(150), addrB, addrA)
			p.TTL = 1
			return p
		}, ReasonTTL, false},
		{"version 5", nil, func(t *testing.T) Packet { p := good(t); p.Payload[0] = 0x51; return p }, ReasonVersion, true},
		{"v2 advert to v3 instance", nil, func(t *testing.T) Packet { return packet(t, v2adv(AuthNone, [8]byte{}, 1), addrB, Group()) }, ReasonVersion, false},
		{"type 3", nil, func(t *testing.T) Packet { p := good(t); p.Payload[0] = 0x33; return p }, ReasonType, true},
		{"truncated", nil, func(t *testing.T) Packet { p := good(t); p.Payload = p.Payload[:11]; return p }, ReasonTruncated, true},
		{"trailing bytes", nil, func(t *testing.T) Packet { p := good(t); p.Payload = append(p.Payload, 0, 0, 0, 0); return p }, ReasonCount, true},
		{"zero count", nil, func(t *testing.T) Packet { p := good(t); p.Payload = p.Payload[:8]; p.Payload[3] = 0; return p }, ReasonZeroCount, true},
		{"unknown vrid", nil, func(t *testing.T) Packet { a := v3Advert(150); a.VRID = 52; return packet(t, a, addrB, Group()) }, ReasonUnknownVRID, true},
		{"checksum", nil, func(t *testing.T) Packet { p := good(t); p.Payload[7] ^= 1; return p }, ReasonChecksum, false},
		{"v3 checksum from another source", nil, func(t *testing.T) Packet { p := good(t); p.Src = addrC; return p }, ReasonChecksum, false},
		{"unicast to multicast instance", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150), addrB, addrA) }, ReasonDestination, false},
		{"multicast to unicast instance", unicast, good, ReasonDestination, false},
		{"we own the addresses", func(c *InstanceConfig) { c.Priority = 255 }, good, ReasonOwner, false},
		{"auth type none for pass", v2pass, func(t *testing.T) Packet { return packet(t, v2adv(AuthNone, [8]byte{}, 1), addrB, Group()) }, ReasonAuthType, false},
		{"auth type ah", v2pass, func(t *testing.T) Packet { return packet(t, v2adv(AuthAH, pw, 1), addrB, Group()) }, ReasonAuthType, false},
		{"wrong password", v2pass, func(t *testing.T) Packet {
			other, _ := Password("s3cr3T")
			return packet(t, v2adv(AuthPass, other, 1), addrB, Group())
		}, ReasonAuthPassword, false},
		{"v2 interval", v2pass, func(t *testing.T) Packet { return packet(t, v2adv(AuthPass, pw, 2), addrB, Group()) }, ReasonInterval, false},
		{"v3 interval 0", nil, func(t *testing.T) Packet { a := v3Advert(150); a.Interval = 0; return packet(t, a, addrB, Group()) }, ReasonInterval, false},
		{"one address missing", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150, vip1), addrB, Group()) }, ReasonAddressList, false},
		{"another address", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150, vip1, addrC), addrB, Group()) }, ReasonAddressList, false},
		{"address twice", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150, vip1, vip1), addrB, Group()) }, ReasonAddressList, false},
		{"not a peer", func(c *InstanceConfig) { c.Peers = []netip.Addr{addrB}; c.CheckPeers = true }, func(t *testing.T) Packet {
			return packet(t, v3Advert(150), addrC, addrA)
		}, ReasonPeer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newFakeTransport()
			c := baseInstance(tr, &fakeAnnouncer{})
			if tt.config != nil {
				tt.config(&c)
			}
			r := newTestRouter(t, Config{Instances: []InstanceConfig{c}})
			before := r.inst("VI_1").m
			tr.take()

			r.receive(at(50*time.Millisecond), tr, tt.pkt(t))

			st := r.Status()
			in, _ := st.Instance("VI_1")
			drops := in.Counters.Drops
			if tt.link {
				drops = st.Links[0].Drops
			}
			if want, got := map[Reason]uint64{tt.want: 1}, drops; !reflect.DeepEqual(want, got) {
				t.Fatalf("drops (link %v): want %v, got %v; instance drops %v, link drops %v",
					tt.link, want, got, in.Counters.Drops, st.Links[0].Drops)
			}
			// A dropped advertisement changes nothing.
			after := r.inst("VI_1").m
			if before != after {
				t.Errorf("machine changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if in.Counters.AdvertsReceived != 0 || !in.LastAdvert.IsZero() {
				t.Errorf("counted as received: %+v, last %v", in.Counters, in.LastAdvert)
			}
			if sent := tr.take(); len(sent) != 0 {
				t.Errorf("sent %d packets", len(sent))
			}
		})
	}
}

func TestRouterAccepts(t *testing.T) {
	tests := []struct {
		name   string
		config func(*InstanceConfig)
		pkt    func(t *testing.T) Packet
	}{
		{"multicast", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150), addrB, Group()) }},
		{"addresses in another order", nil, func(t *testing.T) Packet { return packet(t, v3Advert(150, vip2, vip1), addrB, Group()) }},
		// RFC 3768/5798 7.1: continue processing when the owner sent it.
		{"owner with other addresses", nil, func(t *testing.T) Packet { return packet(t, v3Advert(255, vip1), addrB, Group()) }},
		{"unicast", func(c *InstanceConfig) { c.Peers = []netip.Addr{addrB} }, func(t *testing.T) Packet {
			return packet(t, v3Advert(150), addrB, addrA)
		}},
		{"unicast from anyone without check_unicast_src", func(c *InstanceConfig) { c.Peers = []netip.Addr{addrB} }, func(t *testing.T) Packet {
			return packet(t, v3Advert(150), addrC, addrA)
		}},
		{"routed unicast", func(c *InstanceConfig) { c.Peers = []netip.Addr{addrB}; c.AnyUnicastTTL = true }, func(t *testing.T) Packet {
			p := packet(t, v3Advert(150), addrB, addrA)
			p.TTL = 62
			return p
		}},
		{"v2 without authentication ignores auth data", func(c *InstanceConfig) { c.Version, c.Interval = V2, time.Second }, func(t *testing.T) Packet {
			a := Advertisement{Version: V2, VRID: 51, Priority: 150, Interval: 1, AuthData: [8]byte{1, 2, 3}, Addresses: []netip.Addr{vip1, vip2}}
			return packet(t, a, addrB, Group())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newFakeTransport()
			c := baseInstance(tr, &fakeAnnouncer{})
			if tt.config != nil {
				tt.config(&c)
			}
			r := newTestRouter(t, Config{Instances: []InstanceConfig{c}})
			now := at(50 * time.Millisecond)
			r.receive(now, tr, tt.pkt(t))
			in, _ := r.Status().Instance("VI_1")
			if len(in.Counters.Drops) != 0 {
				t.Fatalf("dropped: %v", in.Counters.Drops)
			}
			if in.Counters.AdvertsReceived != 1 || !in.LastAdvert.Equal(now) {
				t.Fatalf("not counted: %+v, last %v", in.Counters, in.LastAdvert)
			}
			m := r.inst("VI_1").m
			if want, got := now.Add(m.MasterDownInterval()), m.Deadline(); !want.Equal(got) {
				t.Fatalf("Master_Down_Timer not reset: want %v, got %v", want.Sub(t0), got.Sub(t0))
			}
		})
	}
}

// The first advertisement of a new master, byte for byte, for each way of
// sending it.
func TestRouterSends(t *testing.T) {
	tests := []struct {
		name   string
		config func(*InstanceConfig)
		mdi    time.Duration
		want   []Packet
	}{
		{
			name: "v2 pass multicast",
			config: func(c *InstanceConfig) {
				c.Version, c.Interval, c.Priority, c.AuthType, c.Password = V2, time.Second, 150, AuthPass, "s3cr3t"
			},
			mdi:  3*time.Second + ms(414.0625),
			want: []Packet{{Src: addrA, Dst: Group(), TTL: 255, Payload: advV2Pass}},
		},
		{
			name:   "v3 multicast",
			config: func(c *InstanceConfig) { c.Priority = 150 },
			mdi:    300*time.Millisecond + ms(41.40625),
			want:   []Packet{{Src: addrA, Dst: Group(), TTL: 255, Payload: advV3Multicast}},
		},
		{
			name:   "v3 unicast",
			config: func(c *InstanceConfig) { c.Priority, c.Peers = 150, []netip.Addr{addrB} },
			mdi:    300*time.Millisecond + ms(41.40625),
			want:   []Packet{{Src: addrA, Dst: addrB, TTL: 255, Payload: advV3Unicast}},
		},
		{
			name: "v3 unicast old checksum",
			config: func(c *InstanceConfig) {
				c.Priority, c.Peers, c.OldUnicastChecksum = 150, []netip.Addr{addrB}, true
			},
			mdi:  300*time.Millisecond + ms(41.40625),
			want: []Packet{{Src: addrA, Dst: addrB, TTL: 255, Payload: advV3Multicast}},
		},
		{
			name:   "v3 two peers",
			config: func(c *InstanceConfig) { c.Priority, c.Peers = 150, []netip.Addr{addrB, addrC} },
			mdi:    300*time.Millisecond + ms(41.40625),
			want: []Packet{
				{Src: addrA, Dst: addrB, TTL: 255, Payload: advV3Unicast},
				{Src: addrA, Dst: addrC, TTL: 255, Payload: mustHex("31339602" + "000a" + "1d28" + "c6120164" + "c6120165")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newFakeTransport()
			c := baseInstance(tr, &fakeAnnouncer{})
			tt.config(&c)
			r := newTestRouter(t, Config{Instances: []InstanceConfig{c}})
			r.handleTick(at(tt.mdi - 1))
			if sent := tr.take(); len(sent) != 0 {
				t.Fatalf("sent before Master_Down_Interval: %v", sent)
			}
			r.handleTick(at(tt.mdi))
			if got := tr.take(); !reflect.DeepEqual(tt.want, got) {
				t.Fatalf("sent:\nwant %x\ngot  %x", tt.want, got)
			}
			if want, got := Master, r.inst("VI_1").m.State(); want != got {
				t.Fatalf("state: want %v, got %v", want, got)
			}
			// Shutting down sends the same advertisement with priority 0.
			r.step(r.inst("VI_1"), at(tt.mdi+time.Millisecond), Shutdown{})
			for _, p := range tr.take() {
				a, err := Parse(p.Payload, p.Src, checksumDst(c, p.Dst))
				if err != nil {
					t.Fatalf("priority 0 advert: %v", err)
				}
				if a.Priority != 0 {
					t.Fatalf("shutdown advert priority %d", a.Priority)
				}
			}
		})
	}
}

func checksumDst(c InstanceConfig, dst netip.Addr) netip.Addr {
	if c.OldUnicastChecksum {
		return Group()
	}
	return dst
}

// A VRRPv3 unicast peer running an older keepalived sums over
// 224.0.0.18: accept it and answer in kind.
func TestRouterOldUnicastChecksumDetected(t *testing.T) {
	tr := newFakeTransport()
	c := baseInstance(tr, &fakeAnnouncer{})
	c.Peers = []netip.Addr{addrB}
	c.Priority = 200
	r := newTestRouter(t, Config{Instances: []InstanceConfig{c}})
	old := Packet{Src: addrB, Dst: addrA, TTL: TTL, Payload: mustMarshal(t, v3Advert(150), addrB, Group())}
	r.receive(at(10*time.Millisecond), tr, old)
	in, _ := r.Status().Instance("VI_1")
	if in.Counters.AdvertsReceived != 1 || len(in.Counters.Drops) != 0 {
		t.Fatalf("old checksum not accepted: %+v", in.Counters)
	}
	r.handleTick(at(time.Second))
	sent := tr.take()
	if len(sent) != 1 {
		t.Fatalf("sent %d packets, want 1", len(sent))
	}
	if _, err := Parse(sent[0].Payload, addrA, Group()); err != nil {
		t.Fatalf("our advert does not use the old checksum: %v", err)
	}
}

func TestRouterTrackers(t *testing.T) {
	type report struct {
		tracker string
		up      bool
	}
	tests := []struct {
		name      string
		priority  uint8
		track     []Track
		reports   []report
		wantState State
		wantPrio  uint8
		wantFault []string
	}{
		{"waits for its trackers", 100, []Track{{"a", -50}, {"b", 0}}, []report{{"a", true}},
			Initialize, 100, nil},
		{"starts once all reported", 100, []Track{{"a", -50}, {"b", 0}}, []report{{"a", true}, {"b", true}},
			Backup, 100, nil},
		{"negative weight while down", 100, []Track{{"a", -30}, {"b", -20}}, []report{{"a", false}, {"b", false}},
			Backup, 50, nil},
		{"negative weight recovers", 100, []Track{{"a", -30}}, []report{{"a", false}, {"a", true}},
			Backup, 100, nil},
		{"positive weight while up", 100, []Track{{"a", 20}, {"b", 5}}, []report{{"a", true}, {"b", false}},
			Backup, 120, nil},
		{"clamped at 1", 10, []Track{{"a", -50}}, []report{{"a", false}}, Backup, 1, nil},
		{"clamped at 254", 250, []Track{{"a", 20}}, []report{{"a", true}}, Backup, 254, nil},
		{"owner ignores weights", 255, []Track{{"a", -50}}, []report{{"a", false}}, Master, 255, nil},
		{"no weight faults", 100, []Track{{"a", 0}, {"b", -10}}, []report{{"a", false}, {"b", false}},
			Fault, 90, []string{"a"}},
		{"owner faults too", 255, []Track{{"a", 0}}, []report{{"a", false}}, Fault, 255, []string{"a"}},
		{"fault recovers to backup", 100, []Track{{"a", 0}}, []report{{"a", false}, {"a", true}},
			Backup, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseInstance(newFakeTransport(), &fakeAnnouncer{})
			c.Priority = tt.priority
			c.Track = tt.track
			r := newTestRouter(t, Config{
				Instances: []InstanceConfig{c},
				Trackers:  map[string]Tracker{"a": NewFlag(true), "b": NewFlag(true)},
			})
			for i, rep := range tt.reports {
				r.handleTrack(at(time.Duration(i)*time.Millisecond), trackUpdate{r.tracker(rep.tracker), rep.up})
			}
			r.publish()
			in, _ := r.Status().Instance("VI_1")
			if tt.wantState != in.State {
				t.Errorf("state: want %v, got %v", tt.wantState, in.State)
			}
			if tt.wantPrio != in.EffectivePriority {
				t.Errorf("effective priority: want %d, got %d", tt.wantPrio, in.EffectivePriority)
			}
			if tt.priority != in.Priority {
				t.Errorf("configured priority: want %d, got %d", tt.priority, in.Priority)
			}
			if !slices.Equal(tt.wantFault, in.Faults) {
				t.Errorf("faults: want %v, got %v", tt.wantFault, in.Faults)
			}
		})
	}
}

// A master whose tracker faults it resigns with priority 0 and releases the
// addresses.
func TestRouterFaultResigns(t *testing.T) {
	tr := newFakeTransport()
	c := baseInstance(tr, &fakeAnnouncer{})
	c.Track = []Track{{"link", 0}}
	r := newTestRouter(t, Config{Instances: []InstanceConfig{c}, Trackers: map[string]Tracker{"link": NewFlag(true)}})
	link := r.tracker("link")
	r.handleTrack(t0, trackUpdate{link, true})
	r.handleTick(at(time.Second))
	inst := r.inst("VI_1")
	if want, got := Master, inst.m.State(); want != got {
		t.Fatalf("state: want %v, got %v", want, got)
	}
	if hold, _ := inst.ann.want(); !hold {
		t.Fatal("master does not hold its addresses")
	}
	tr.take()
	r.handleTrack(at(1100*time.Millisecond), trackUpdate{link, false})
	if want, got := Fault, inst.m.State(); want != got {
		t.Fatalf("state: want %v, got %v", want, got)
	}
	sent := tr.take()
	if len(sent) != 1 || sent[0].Payload[2] != 0 {
		t.Fatalf("want one priority 0 advert, got %x", sent)
	}
	if hold, _ := inst.ann.want(); hold {
		t.Fatal("faulted instance still holds its addresses")
	}
	// Faulted, it neither advertises nor times out.
	r.handleTick(at(10 * time.Second))
	if sent := tr.take(); len(sent) != 0 || inst.m.State() != Fault {
		t.Fatalf("faulted instance sent %x, state %v", sent, inst.m.State())
	}
}

func TestRouterSyncGroup(t *testing.T) {
	tr := newFakeTransport()
	vi1 := baseInstance(tr, &fakeAnnouncer{})
	vi2 := baseInstance(tr, &fakeAnnouncer{})
	vi2.Name, vi2.VRID = "VI_2", 52
	vi2.Addresses = []netip.Prefix{netip.MustParsePrefix("198.18.2.1/32")}
	vi2.Track = []Track{{"chk", 0}}
	r := newTestRouter(t, Config{
		Instances: []InstanceConfig{vi1, vi2},
		Groups:    []SyncGroup{{Name: "G", Instances: []string{"VI_1", "VI_2"}, Notify: []string{"/notify"}}},
		Trackers:  map[string]Tracker{"chk": NewFlag(true)},
	})
	one, two := r.inst("VI_1"), r.inst("VI_2")
	chk := r.tracker("chk")
	states := func() []State { return []State{one.m.State(), two.m.State()} }
	want := func(what string, s ...State) {
		t.Helper()
		if got := states(); !slices.Equal(s, got) {
			t.Fatalf("%s: want %v, got %v", what, s, got)
		}
	}
	want("members wait for each other's trackers", Initialize, Initialize)
	r.handleTrack(t0, trackUpdate{chk, true})
	want("started together", Backup, Backup)

	mdi := 300*time.Millisecond + ms(60.9375)
	// VI_2 still hears a master; VI_1's timer fires: VI_1 waits.
	r.receive(at(100*time.Millisecond), tr, packet(t, Advertisement{Version: V3, VRID: 52, Priority: 150, Interval: 10, Addresses: []netip.Addr{netip.MustParseAddr("198.18.2.1")}}, addrB, Group()))
	r.handleTick(at(mdi))
	want("a ready member waits for the group", Backup, Backup)
	if !one.m.Ready() || two.m.Ready() {
		t.Fatalf("ready: VI_1 %v VI_2 %v", one.m.Ready(), two.m.Ready())
	}
	// VI_2's master falls silent: both go master together.
	r.handleTick(at(100*time.Millisecond + mdi))
	want("group becomes master together", Master, Master)

	// A higher priority master for VI_1 takes the whole group back.
	r.receive(at(time.Second), tr, packet(t, v3Advert(200), addrB, Group()))
	want("group follows a member to backup", Backup, Backup)
	if c := two.changes[len(two.changes)-1]; c.Cause != CauseGroup {
		t.Fatalf("VI_2 cause: want %v, got %v", CauseGroup, c.Cause)
	}

	// A fault of one member faults the group.
	r.handleTrack(at(2*time.Second), trackUpdate{chk, false})
	want("group faults with a member", Fault, Fault)
	r.publish()
	in, _ := r.Status().Instance("VI_1")
	if want, got := []string{"group:chk"}, in.Faults; !slices.Equal(want, got) {
		t.Fatalf("VI_1 faults: want %v, got %v", want, got)
	}
	r.handleTrack(at(3*time.Second), trackUpdate{chk, true})
	want("group recovers", Backup, Backup)

	var notes []string
	for len(r.groups[0].queue.ch) > 0 {
		notes = append(notes, strings.Join(<-r.groups[0].queue.ch, " "))
	}
	wantNotes := []string{
		"/notify GROUP G BACKUP",
		"/notify GROUP G MASTER",
		"/notify GROUP G BACKUP",
		"/notify GROUP G FAULT",
		"/notify GROUP G BACKUP",
	}
	if !slices.Equal(wantNotes, notes) {
		t.Fatalf("group notifications:\nwant %q\ngot  %q", wantNotes, notes)
	}
}

func TestRouterNotifyArguments(t *testing.T) {
	tr := newFakeTransport()
	c := baseInstance(tr, &fakeAnnouncer{})
	c.Notify = []string{"/usr/local/bin/vrrp-notify", "--from-xdplb"}
	r := newTestRouter(t, Config{Instances: []InstanceConfig{c}})
	inst := r.inst("VI_1")
	r.handleTick(at(time.Second))
	r.receive(at(2*time.Second), tr, packet(t, v3Advert(200), addrB, Group()))
	r.step(inst, at(3*time.Second), Shutdown{})
	var got []string
	for len(inst.notify.ch) > 0 {
		got = append(got, strings.Join(<-inst.notify.ch, " "))
	}
	want := []string{
		"/usr/local/bin/vrrp-notify --from-xdplb INSTANCE VI_1 BACKUP 100",
		"/usr/local/bin/vrrp-notify --from-xdplb INSTANCE VI_1 MASTER 100",
		"/usr/local/bin/vrrp-notify --from-xdplb INSTANCE VI_1 BACKUP 100",
		"/usr/local/bin/vrrp-notify --from-xdplb INSTANCE VI_1 STOP 100",
	}
	if !slices.Equal(want, got) {
		t.Fatalf("notifications:\nwant %q\ngot  %q", want, got)
	}
}

func TestRouterStatus(t *testing.T) {
	tr := newFakeTransport()
	r := newTestRouter(t, Config{Instances: []InstanceConfig{baseInstance(tr, &fakeAnnouncer{})}})
	r.receive(at(20*time.Millisecond), tr, packet(t, Advertisement{Version: V3, VRID: 51, Priority: 150, Interval: 20, Addresses: []netip.Addr{vip1, vip2}}, addrB, Group()))
	r.receive(at(30*time.Millisecond), tr, Packet{Src: addrB, Dst: Group(), TTL: 255, Payload: []byte{0x31}})
	in, ok := r.Status().Instance("VI_1")
	if !ok {
		t.Fatal("no VI_1 in status")
	}
	want := InstanceStatus{
		Name: "VI_1", Interface: "eth0", VRID: 51, Version: V3, State: Backup,
		Priority: 100, EffectivePriority: 100, Master: addrB, MasterPriority: 150,
		AdvertInterval: 100 * time.Millisecond, MasterAdvertInterval: 200 * time.Millisecond,
		Addresses:  []netip.Prefix{vipP1, vipP2},
		LastAdvert: at(20 * time.Millisecond),
		Counters:   Counters{AdvertsReceived: 1, Transitions: 1, Drops: map[Reason]uint64{}},
		Transitions: []StateChange{
			{At: t0, From: Initialize, To: Backup, Cause: CauseStartup},
		},
	}
	if !reflect.DeepEqual(want, in) {
		t.Fatalf("status:\nwant %+v\ngot  %+v", want, in)
	}
	if want, got := map[Reason]uint64{ReasonTruncated: 1}, r.Status().Links[0].Drops; !reflect.DeepEqual(want, got) {
		t.Fatalf("link drops: want %v, got %v", want, got)
	}
	js, err := json.Marshal(r.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"BACKUP"`, `"master":"198.18.0.2"`, `"drops":{"truncated":1}`, `"from":"INIT"`, `"cause":"startup"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON status lacks %s:\n%s", want, js)
		}
	}
	// Snapshots are copies.
	s := r.Status()
	s.Instances[0].Counters.Drops[ReasonTTL] = 7
	if in, _ := r.Status().Instance("VI_1"); in.Counters.Drops[ReasonTTL] != 0 {
		t.Fatal("Status shares its maps")
	}
}

func TestRouterDropLogIsRateLimited(t *testing.T) {
	var logs bytes.Buffer
	tr := newFakeTransport()
	r, err := NewRouter(Config{
		Instances:       []InstanceConfig{baseInstance(tr, &fakeAnnouncer{})},
		Logger:          newTextLogger(&logs),
		DropLogInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.startReady(t0)
	bad := packet(t, v3Advert(150), addrB, Group())
	bad.TTL = 1
	for i := range 100 {
		r.receive(at(time.Duration(i)*20*time.Millisecond), tr, bad) // 2 seconds' worth
	}
	lines := strings.Count(logs.String(), "vrrp advertisement dropped")
	if want := 2; want != lines {
		t.Fatalf("want %d log lines for 100 drops over 2s, got %d:\n%s", want, lines, logs.String())
	}
	if !strings.Contains(logs.String(), "suppressed=49") {
		t.Fatalf("second line does not report the 49 suppressed drops:\n%s", logs.String())
	}
	in, _ := r.Status().Instance("VI_1")
	if want, got := uint64(100), in.Counters.Drops[ReasonTTL]; want != got {
		t.Fatalf("ttl drops: want %d, got %d", want, got)
	}
}

func TestNewRouterRejects(t *testing.T) {
	tr := newFakeTransport()
	ok := func() InstanceConfig { return baseInstance(tr, &fakeAnnouncer{}) }
	tests := []struct {
		name string
		cfg  func() Config
		want string
	}{
		{"no instances", func() Config { return Config{} }, "no instances"},
		{"no name", func() Config { c := ok(); c.Name = ""; return Config{Instances: []InstanceConfig{c}} }, "no name"},
		{"vrid 0", func() Config { c := ok(); c.VRID = 0; return Config{Instances: []InstanceConfig{c}} }, "virtual router id"},
		{"version 4", func() Config { c := ok(); c.Version = 4; return Config{Instances: []InstanceConfig{c}} }, "version"},
		{"priority 0", func() Config { c := ok(); c.Priority = 0; return Config{Instances: []InstanceConfig{c}} }, "priority"},
		{"v2 150ms", func() Config {
			c := ok()
			c.Version = V2
			c.Interval = 150 * time.Millisecond
			return Config{Instances: []InstanceConfig{c}}
		}, "whole seconds"},
		{"v3 5ms", func() Config {
			c := ok()
			c.Interval = 5 * time.Millisecond
			return Config{Instances: []InstanceConfig{c}}
		}, "multiple of 10ms"},
		{"no addresses", func() Config { c := ok(); c.Addresses = nil; return Config{Instances: []InstanceConfig{c}} }, "virtual addresses"},
		{"ipv6 address", func() Config {
			c := ok()
			c.Addresses = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}
			return Config{Instances: []InstanceConfig{c}}
		}, "not IPv4"},
		{"address twice", func() Config {
			c := ok()
			c.Addresses = []netip.Prefix{vipP1, netip.MustParsePrefix("198.18.1.100/24")}
			return Config{Instances: []InstanceConfig{c}}
		}, "twice"},
		{"no source", func() Config { c := ok(); c.Source = netip.Addr{}; return Config{Instances: []InstanceConfig{c}} }, "source"},
		{"no transport", func() Config { c := ok(); c.Transport = nil; return Config{Instances: []InstanceConfig{c}} }, "transport"},
		{"v3 password", func() Config {
			c := ok()
			c.AuthType, c.Password = AuthPass, "x"
			return Config{Instances: []InstanceConfig{c}}
		}, "no authentication"},
		{"long password", func() Config {
			c := ok()
			c.Version, c.Interval, c.AuthType, c.Password = V2, time.Second, AuthPass, "123456789"
			return Config{Instances: []InstanceConfig{c}}
		}, "password"},
		{"ah", func() Config {
			c := ok()
			c.Version, c.Interval, c.AuthType = V2, time.Second, AuthAH
			return Config{Instances: []InstanceConfig{c}}
		}, "unsupported"},
		{"peer is us", func() Config { c := ok(); c.Peers = []netip.Addr{addrA}; return Config{Instances: []InstanceConfig{c}} }, "peer"},
		{"same vrid on one link", func() Config {
			c2 := ok()
			c2.Name = "VI_2"
			return Config{Instances: []InstanceConfig{ok(), c2}}
		}, "share VRID 51"},
		{"name twice", func() Config {
			c2 := ok()
			c2.VRID = 52
			return Config{Instances: []InstanceConfig{ok(), c2}}
		}, "used twice"},
		{"unknown tracker", func() Config {
			c := ok()
			c.Track = []Track{{"nope", 0}}
			return Config{Instances: []InstanceConfig{c}}
		}, "unknown tracker"},
		{"weight too big", func() Config {
			c := ok()
			c.Track = []Track{{"a", 254}}
			return Config{Instances: []InstanceConfig{c}, Trackers: map[string]Tracker{"a": NewFlag(true)}}
		}, "weight"},
		{"group of unknown", func() Config {
			return Config{Instances: []InstanceConfig{ok()}, Groups: []SyncGroup{{Name: "G", Instances: []string{"VI_9"}}}}
		}, "unknown instance"},
		{"two groups", func() Config {
			return Config{Instances: []InstanceConfig{ok()}, Groups: []SyncGroup{{Name: "G", Instances: []string{"VI_1"}}, {Name: "H", Instances: []string{"VI_1"}}}}
		}, "sync groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRouter(tt.cfg())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := limiter{every: time.Second, last: map[string]time.Time{}, suppressed: map[string]int{}}
	steps := []struct {
		key        string
		at         time.Duration
		want       bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", 500 * time.Millisecond, false, 0},
		{"b", 600 * time.Millisecond, true, 0},
		{"a", 999 * time.Millisecond, false, 0},
		{"a", time.Second, true, 2},
		{"a", 3 * time.Second, true, 0},
	}
	for _, s := range steps {
		ok, n := l.allow(s.key, at(s.at))
		if s.want != ok || s.suppressed != n {
			t.Errorf("allow(%s, %v): want %v %d, got %v %d", s.key, s.at, s.want, s.suppressed, ok, n)
		}
	}
}

func TestRunTwice(t *testing.T) {
	r, err := NewRouter(Config{Instances: []InstanceConfig{baseInstance(newFakeTransport(), &fakeAnnouncer{})}})
	if err != nil {
		t.Fatal(err)
	}
	r.running.Store(true)
	if err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Run: want error, got %v", err)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRouterChanges(t *testing.T) {
	ch := make(chan Change, 1)
	c := baseInstance(newFakeTransport(), &fakeAnnouncer{})
	r := newTestRouter(t, Config{Instances: []InstanceConfig{c}, Changes: ch})
	r.handleTick(at(time.Second)) // becomes master, but the channel is full
	r.publish()
	want := Change{Instance: "VI_1", VRID: 51, Priority: 100, StateChange: StateChange{At: t0, From: Initialize, To: Backup, Cause: CauseStartup}}
	if got := <-ch; want != got {
		t.Fatalf("change:\nwant %+v\ngot  %+v", want, got)
	}
	in, _ := r.Status().Instance("VI_1")
	if in.Counters.ChangesDropped != 1 || in.Counters.Transitions != 2 || in.State != Master {
		t.Fatalf("counters %+v, state %v", in.Counters, in.State)
	}
}

// FuzzRouterReceive hands arbitrary packets to a Router with a v2 and a v3
// instance on one link: it must never panic, and every packet is either
// accepted or dropped with exactly one counted reason.
func FuzzRouterReceive(f *testing.F) {
	pw, _ := Password("s3cr3t")
	v2 := Advertisement{Version: V2, VRID: 51, Priority: 150, Interval: 1, AuthType: AuthPass, AuthData: pw, Addresses: []netip.Addr{vip1, vip2}}
	v3 := Advertisement{Version: V3, VRID: 52, Priority: 150, Interval: 10, Addresses: []netip.Addr{vip1}}
	for _, a := range []Advertisement{v2, v3} {
		for _, dst := range []netip.Addr{Group(), addrA} {
			b, err := a.Marshal(addrB, dst)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(255), dst == addrA)
			f.Add(b, uint8(64), dst == addrA)
		}
	}
	f.Add(advV3Multicast, uint8(255), false)
	f.Add([]byte{}, uint8(255), false)
	f.Fuzz(func(t *testing.T, payload []byte, ttl uint8, unicast bool) {
		tr := newFakeTransport()
		c2 := baseInstance(tr, &fakeAnnouncer{})
		c2.Version, c2.Interval, c2.AuthType, c2.Password = V2, time.Second, AuthPass, "s3cr3t"
		c3 := baseInstance(tr, &fakeAnnouncer{})
		c3.Name, c3.VRID, c3.Addresses = "VI_3", 52, []netip.Prefix{vipP1}
		r, err := NewRouter(Config{Instances: []InstanceConfig{c2, c3}})
		if err != nil {
			t.Fatal(err)
		}
		r.startReady(t0)
		dst := Group()
		if unicast {
			dst = addrA
		}
		r.receive(at(time.Millisecond), tr, Packet{Src: addrB, Dst: dst, TTL: ttl, Payload: payload})
		st := r.Status()
		var n uint64
		for _, d := range st.Links[0].Drops {
			n += d
		}
		for _, in := range st.Instances {
			n += in.Counters.AdvertsReceived
			for _, d := range in.Counters.Drops {
				n += d
			}
		}
		if n != 1 {
			t.Fatalf("packet %x counted %d times: %+v", payload, n, st)
		}
	})
}
