package main

import (
	"encoding/json"
	"io"
	"time"
)

// The --json output of every command is one of the types below, encoded
// with encoding/json. Field names are part of xdplb's interface: fields
// may be added, never renamed or removed. Addresses are strings in their
// usual notation, MACs as 02:00:5e:10:00:21, counters as numbers.

// vipListJSON is the output of 'xdplb vip list --json'.
type vipListJSON struct {
	Interface string    `json:"interface"`
	VIPs      []vipJSON `json:"vips"`
}

// vipJSON is one VIP with its backends.
type vipJSON struct {
	VIP        string `json:"vip"` // as on the command line: 198.18.1.100:80/tcp
	Address    string `json:"address"`
	Port       uint16 `json:"port"` // 0: every port
	Protocol   string `json:"protocol"`
	Index      uint32 `json:"index"`      // slot in the rings and vip_stats maps
	Forwarding string `json:"forwarding"` // dr or tun
	Scheduler  string `json:"scheduler"`  // maglev, source-hash or failover
	// PersistencePrefix is the client prefix length hashed by source-hash;
	// absent for the other schedulers.
	PersistencePrefix *uint8        `json:"persistence_prefix,omitempty"`
	RingSize          uint32        `json:"ring_size"`
	EmptySlots        uint32        `json:"empty_slots"` // table slots without a backend: their new flows are dropped
	Backends          []backendJSON `json:"backends"`
}

// backendJSON is one backend of a VIP.
type backendJSON struct {
	ID      uint32 `json:"id"` // slot in the backends and backend_stats maps
	Address string `json:"address"`
	MAC     string `json:"mac"`   // next hop: the backend (dr) or the router towards it (tun)
	State   string `json:"state"` // active, draining or down
	Weight  uint32 `json:"weight"`
	Slots   uint32 `json:"slots"` // Maglev table slots it owns: its share of new flows
}

// mapsListJSON is the output of 'xdplb maps list --json'.
type mapsListJSON struct {
	Interface    string    `json:"interface"`
	Maps         []mapJSON `json:"maps"`
	MemlockBytes uint64    `json:"memlock_bytes"` // sum over the maps
}

// mapJSON describes one BPF map.
type mapJSON struct {
	Name       string `json:"name"` // as in the object; rings[N] is the Maglev table of VIP index N
	Type       string `json:"type"` // kernel map type, such as Hash or PerCPUArray
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries"`
	// Entries is what is in use: keys of a hash, used slots of an array
	// indexed by VIP or backend, table slots with a backend.
	Entries      uint64 `json:"entries"`
	MemlockBytes uint64 `json:"memlock_bytes"`
}

// mapDumpJSON is the output of 'xdplb maps dump NAME --json'. Entries
// depends on the map:
//
//	vips            []vipEntryJSON
//	backends        []backendEntryJSON
//	rings, rings[N] []ringJSON
//	flows           []flowJSON
//	config          configJSON
//	reason_stats    map[string]uint64, by reason name
//	event_stats     map[string]uint64, by event name
//	vip_stats       []vipStatsJSON
//	backend_stats   []backendStatsJSON
type mapDumpJSON struct {
	Interface string `json:"interface"`
	Map       string `json:"map"`
	Entries   any    `json:"entries"`
}

// vipEntryJSON is one entry of the vips map.
type vipEntryJSON struct {
	VIP               string `json:"vip"`
	Index             uint32 `json:"index"`
	Forwarding        string `json:"forwarding"`
	Scheduler         string `json:"scheduler"`
	PersistencePrefix *uint8 `json:"persistence_prefix,omitempty"`
}

// backendEntryJSON is one used slot of the backends map.
type backendEntryJSON struct {
	ID       uint32 `json:"id"`
	VIP      string `json:"vip"`
	VIPIndex uint32 `json:"vip_index"`
	Address  string `json:"address"`
	MAC      string `json:"mac"`
	State    string `json:"state"`
	Weight   uint32 `json:"weight"`
}

// ringJSON summarises one Maglev table: slots per backend.
type ringJSON struct {
	VIP        string         `json:"vip"`
	VIPIndex   uint32         `json:"vip_index"`
	Size       uint32         `json:"size"`
	EmptySlots uint32         `json:"empty_slots"`
	Backends   []ringSlotJSON `json:"backends"` // by id
}

// ringSlotJSON is one backend's share of a table.
type ringSlotJSON struct {
	ID      uint32  `json:"id"`
	Address string  `json:"address"` // empty if the id has no backend (a stale table)
	Slots   uint32  `json:"slots"`
	Share   float64 `json:"share"` // Slots / Size
}

// flowJSON is one entry of the flow table.
type flowJSON struct {
	Source      string `json:"source"`      // client address:port
	Destination string `json:"destination"` // VIP address:port
	Protocol    string `json:"protocol"`
	BackendID   uint32 `json:"backend_id"`
	Backend     string `json:"backend"` // address, empty if the slot is free (the flow re-hashes)
}

// configJSON is the config map's entry.
type configJSON struct {
	TunnelSource string `json:"tunnel_source"` // empty if unset
	InterfaceMAC string `json:"interface_mac"`
	MTU          uint16 `json:"mtu"`
	TunnelTTL    uint8  `json:"tunnel_ttl"`
}

// statsJSON is the output of 'xdplb stats --json'; with --watch, one
// object per line and per interval, the rates covering the interval since
// the previous line (absent from the first).
type statsJSON struct {
	Interface string             `json:"interface"`
	Time      time.Time          `json:"time"`
	Reasons   map[string]uint64  `json:"reasons"` // every reason, zero included
	Events    map[string]uint64  `json:"events"`  // every flow-table event
	VIPs      []vipStatsJSON     `json:"vips"`
	Backends  []backendStatsJSON `json:"backends"`

	IntervalSeconds float64            `json:"interval_seconds,omitempty"`
	ReasonRates     map[string]float64 `json:"reason_rates,omitempty"` // per second
	EventRates      map[string]float64 `json:"event_rates,omitempty"`
}

// vipStatsJSON is the traffic forwarded for one VIP.
type vipStatsJSON struct {
	VIP              string   `json:"vip"`
	Index            uint32   `json:"index"`
	Packets          uint64   `json:"packets"`
	Bytes            uint64   `json:"bytes"`
	PacketsPerSecond *float64 `json:"packets_per_second,omitempty"`
	BytesPerSecond   *float64 `json:"bytes_per_second,omitempty"`
}

// backendStatsJSON is the traffic forwarded to one backend.
type backendStatsJSON struct {
	ID               uint32   `json:"id"`
	VIP              string   `json:"vip"`
	Address          string   `json:"address"`
	Packets          uint64   `json:"packets"`
	Bytes            uint64   `json:"bytes"`
	PacketsPerSecond *float64 `json:"packets_per_second,omitempty"`
	BytesPerSecond   *float64 `json:"bytes_per_second,omitempty"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line, for streams of objects.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
