package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdplb/xdplb/loader"
)

// Scheduler is how a VIP spreads new flows over its active backends.
type Scheduler uint8

// Schedulers.
const (
	// SchedulerMaglev hashes the whole 5-tuple into a weighted Maglev
	// table: every connection is placed independently.
	SchedulerMaglev Scheduler = iota
	// SchedulerSourceHash is Maglev over the client address masked to the
	// VIP's persistence prefix, so a client (or a client network) keeps
	// its backend across connections.
	SchedulerSourceHash
	// SchedulerFailover sends every new flow to one backend: the active
	// backend with the highest weight, the lowest address among equals.
	SchedulerFailover
)

var schedulerNames = [...]string{
	SchedulerMaglev:     "maglev",
	SchedulerSourceHash: "source-hash",
	SchedulerFailover:   "failover",
}

// String returns "maglev", "source-hash" or "failover".
func (s Scheduler) String() string {
	if int(s) < len(schedulerNames) {
		return schedulerNames[s]
	}
	return "scheduler(" + strconv.Itoa(int(s)) + ")"
}

// ParseScheduler parses the names String returns (any case).
func ParseScheduler(s string) (Scheduler, error) {
	for i, name := range schedulerNames {
		if strings.EqualFold(s, name) {
			return Scheduler(i), nil
		}
	}
	return 0, fmt.Errorf("parse scheduler %q: want maglev, source-hash or failover", s)
}

// Service is the desired state of one VIP: how it forwards, how it
// schedules, and its backends.
type Service struct {
	VIP loader.VIP
	// Config holds the forwarding method and the persistence prefix.
	// Persist is implied by Scheduler: Apply sets it for source-hash and
	// clears it otherwise; Persist with SchedulerMaglev means source-hash.
	Config    loader.VIPConfig
	Scheduler Scheduler
	Backends  []Backend
}

// Backend is the desired state of one backend of a Service. Its address
// is its identity: the backend slot, and so the flows pinned to it, stay
// the same while the address does.
type Backend struct {
	Addr netip.Addr
	// Weight is the backend's share of the Maglev table relative to the
	// other active backends; 0 keeps it out of the table, like draining.
	Weight uint32
	// MAC is the next hop: the backend itself (DR) or the router towards
	// it (TUN). Required when State is active.
	MAC net.HardwareAddr
	// State is active, draining (established flows only) or down (no
	// flows; pinned ones are re-hashed).
	State loader.BackendState
}

// Backend returns the backend with address a, if s has one.
func (s Service) Backend(a netip.Addr) (Backend, bool) {
	for _, b := range s.Backends {
		if b.Addr == a {
			return b, true
		}
	}
	return Backend{}, false
}

// ErrInvalidService is wrapped by every error Validate returns.
var ErrInvalidService = errors.New("invalid service")

// Validate reports what the data plane cannot carry: a VIP or backend that
// is not IPv4, an unknown protocol, scheduler or state, a persistence
// prefix beyond 32 bits, a backend listed twice, or an active backend
// without a next-hop MAC. The error wraps ErrInvalidService.
func (s Service) Validate() error {
	var errs []error
	if !s.VIP.Addr.Is4() {
		errs = append(errs, fmt.Errorf("VIP address %v: only IPv4 is forwarded", s.VIP.Addr))
	}
	if s.VIP.Proto != loader.TCP && s.VIP.Proto != loader.UDP {
		errs = append(errs, fmt.Errorf("VIP protocol %v: want tcp or udp", s.VIP.Proto))
	}
	if s.Config.Forwarding != loader.ForwardDR && s.Config.Forwarding != loader.ForwardTUN {
		errs = append(errs, fmt.Errorf("forwarding %v: want dr or tun", s.Config.Forwarding))
	}
	if int(s.Scheduler) >= len(schedulerNames) {
		errs = append(errs, fmt.Errorf("unknown %v", s.Scheduler))
	}
	if s.Config.Persist && s.Scheduler == SchedulerFailover {
		errs = append(errs, errors.New("source persistence does not apply to the failover scheduler"))
	}
	if s.Config.PersistPrefix > 32 {
		errs = append(errs, fmt.Errorf("persistence prefix /%d: want 0..32", s.Config.PersistPrefix))
	}
	seen := make(map[netip.Addr]bool, len(s.Backends))
	for _, b := range s.Backends {
		switch {
		case !b.Addr.Is4():
			errs = append(errs, fmt.Errorf("backend address %v: only IPv4 is forwarded", b.Addr))
			continue
		case seen[b.Addr]:
			errs = append(errs, fmt.Errorf("backend %v listed more than once", b.Addr))
		}
		seen[b.Addr] = true
		switch b.State {
		case loader.StateActive, loader.StateDraining, loader.StateDown:
		default:
			errs = append(errs, fmt.Errorf("backend %v: state %v: want active, draining or down", b.Addr, b.State))
		}
		if b.MAC != nil && len(b.MAC) != 6 {
			errs = append(errs, fmt.Errorf("backend %v: MAC %v is not a 6-byte Ethernet address", b.Addr, b.MAC))
		} else if b.State == loader.StateActive && (b.MAC == nil || bytes.Equal(b.MAC, make([]byte, 6))) {
			errs = append(errs, fmt.Errorf("backend %v is active but has no next-hop MAC", b.Addr))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %v: %w", ErrInvalidService, s.VIP, errors.Join(errs...))
}
