package controlplane

import "github.com/xdplb/xdplb/loader"

// Dataplane is the part of a *loader.Balancer the control plane programs:
// VIPs, backend slots and Maglev rings. Tests substitute an in-memory fake,
// so the reconcile logic runs without BPF.
type Dataplane interface {
	// Options returns the load-time settings; the control plane reads
	// RingSize from them.
	Options() loader.Options

	AddVIP(v loader.VIP, c loader.VIPConfig) (loader.VIPEntry, error)
	UpdateVIP(v loader.VIP, c loader.VIPConfig) error
	DeleteVIP(v loader.VIP) error
	LookupVIP(v loader.VIP) (loader.VIPEntry, error)
	VIPs() ([]loader.VIPEntry, error)

	FreeBackendID() (uint32, error)
	SetBackend(b loader.Backend) error
	DeleteBackend(id uint32) error
	Backends() ([]loader.Backend, error)

	SetRing(vipIndex uint32, ids []uint32) error
	Ring(vipIndex uint32) ([]uint32, error)
}

// A *loader.Balancer is the Dataplane the CLI and the daemon program.
var _ Dataplane = (*loader.Balancer)(nil)
