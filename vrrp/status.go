package vrrp

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Status is a snapshot of a Router, for `xdplb vrrp status` and metrics.
type Status struct {
	Instances []InstanceStatus `json:"instances"`
	Groups    []GroupStatus    `json:"groups,omitempty"`
	Links     []LinkStatus     `json:"links"`
}

// InstanceStatus describes one virtual router instance.
type InstanceStatus struct {
	Name      string  `json:"name"`
	Interface string  `json:"interface"`
	VRID      uint8   `json:"vrid"`
	Version   Version `json:"version"`
	Group     string  `json:"group,omitempty"`
	State     State   `json:"state"`
	// Priority is the configured priority, EffectivePriority the one after
	// tracker weights, which the instance advertises.
	Priority          uint8 `json:"priority"`
	EffectivePriority uint8 `json:"effective_priority"`
	// Master is the current master as far as this router knows (its own
	// address when master), MasterPriority what it advertises.
	Master         netip.Addr `json:"master,omitzero"`
	MasterPriority uint8      `json:"master_priority"`
	// AdvertInterval is the configured interval; MasterAdvertInterval the
	// one in use by the master (VRRPv3 learns it).
	AdvertInterval       time.Duration  `json:"advert_interval_ns"`
	MasterAdvertInterval time.Duration  `json:"master_advert_interval_ns"`
	Addresses            []netip.Prefix `json:"addresses"`
	// Faults names the failing trackers that hold the instance in Fault,
	// prefixed with "group:" when a sync group member's tracker does.
	Faults []string `json:"faults,omitempty"`
	// LastAdvert is when the last valid advertisement arrived.
	LastAdvert  time.Time     `json:"last_advert,omitzero"`
	Counters    Counters      `json:"counters"`
	Transitions []StateChange `json:"transitions"`
}

// Counters count an instance's protocol traffic and transitions.
type Counters struct {
	AdvertsSent       uint64 `json:"adverts_sent"`
	AdvertsReceived   uint64 `json:"adverts_received"`
	Priority0Sent     uint64 `json:"priority0_sent"`
	Priority0Received uint64 `json:"priority0_received"`
	SendErrors        uint64 `json:"send_errors"`
	Transitions       uint64 `json:"transitions"`
	BecameMaster      uint64 `json:"became_master"`
	ReleasedMaster    uint64 `json:"released_master"`
	NotifyDropped     uint64 `json:"notify_dropped"`
	ChangesDropped    uint64 `json:"changes_dropped"`
	// Drops counts received advertisements dropped, by reason.
	Drops map[Reason]uint64 `json:"drops"`
}

// StateChange is one transition with its time.
type StateChange struct {
	At    time.Time `json:"at"`
	From  State     `json:"from"`
	To    State     `json:"to"`
	Cause Cause     `json:"cause"`
}

// GroupStatus describes a sync group.
type GroupStatus struct {
	Name      string   `json:"name"`
	State     State    `json:"state"`
	Instances []string `json:"instances"`
}

// LinkStatus counts what a Transport received that no instance could
// claim: malformed messages and unknown VRIDs.
type LinkStatus struct {
	Interface     string            `json:"interface"`
	Received      uint64            `json:"received"`
	ReceiveErrors uint64            `json:"receive_errors"`
	Drops         map[Reason]uint64 `json:"drops"`
}

// Instance returns the status of the named instance.
func (s Status) Instance(name string) (InstanceStatus, bool) {
	for _, i := range s.Instances {
		if i.Name == name {
			return i, true
		}
	}
	return InstanceStatus{}, false
}

func (s Status) clone() Status {
	c := Status{
		Instances: slices.Clone(s.Instances),
		Groups:    slices.Clone(s.Groups),
		Links:     slices.Clone(s.Links),
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		in.Addresses = slices.Clone(in.Addresses)
		in.Faults = slices.Clone(in.Faults)
		in.Transitions = slices.Clone(in.Transitions)
		in.Counters.Drops = maps.Clone(in.Counters.Drops)
	}
	for i := range c.Groups {
		c.Groups[i].Instances = slices.Clone(c.Groups[i].Instances)
	}
	for i := range c.Links {
		c.Links[i].Drops = maps.Clone(c.Links[i].Drops)
	}
	return c
}

// dropMap turns a reason-indexed array into a map of the non-zero counts.
func dropMap(a *[reasonEnd]uint64) map[Reason]uint64 {
	m := map[Reason]uint64{}
	for r, n := range a {
		if n != 0 {
			m[Reason(r)] = n
		}
	}
	return m
}
