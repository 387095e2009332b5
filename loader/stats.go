package loader

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// Counter is a packet and byte count.
type Counter struct {
	Packets, Bytes uint64
}

// Stats are the program's counters, summed over CPUs.
type Stats struct {
	Reasons  map[Reason]uint64  // every reason, zero included
	Events   map[Event]uint64   // every event, zero included
	VIPs     map[uint32]Counter // by VIP index, configured VIPs only
	Backends map[uint32]Counter // by backend id, used slots only
}

func addU64(s *uint64, v uint64) { *s += v }

func addCounter(s *lbLbCounter, v lbLbCounter) {
	s.Packets += v.Packets
	s.Bytes += v.Bytes
}

// readReasons sums a reason_stats map.
func readReasons(m *ebpf.Map) (map[Reason]uint64, error) {
	out := make(map[Reason]uint64, m.MaxEntries())
	for r := range m.MaxEntries() {
		n, err := sumPerCPU(m, r, addU64)
		if err != nil {
			return nil, fmt.Errorf("read reason %s: %w", Reason(r), err)
		}
		out[Reason(r)] = n
	}
	return out, nil
}

// Stats reads every counter, summed over CPUs. Counters of VIPs and
// backends are reset when they are deleted.
func (b *Balancer) Stats() (Stats, error) {
	s := Stats{
		Events:   make(map[Event]uint64),
		VIPs:     make(map[uint32]Counter),
		Backends: make(map[uint32]Counter),
	}
	var err error
	if s.Reasons, err = readReasons(b.maps.ReasonStats); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	for e := range b.maps.EventStats.MaxEntries() {
		n, err := sumPerCPU(b.maps.EventStats, e, addU64)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: read event %s: %w", Event(e), err)
		}
		s.Events[Event(e)] = n
	}
	vips, err := b.VIPs()
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	for _, v := range vips {
		c, err := sumPerCPU(b.maps.VipStats, v.Index, addCounter)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: read VIP %s: %w", v.VIP, err)
		}
		s.VIPs[v.Index] = Counter{Packets: c.Packets, Bytes: c.Bytes}
	}
	backends, err := b.Backends()
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	for _, be := range backends {
		c, err := sumPerCPU(b.maps.BackendStats, be.ID, addCounter)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: read backend %d: %w", be.ID, err)
		}
		s.Backends[be.ID] = Counter{Packets: c.Packets, Bytes: c.Bytes}
	}
	return s, nil
}

// MapInfo describes one BPF map of the balancer and the kernel memory it
// holds.
type MapInfo struct {
	Name       string // name in the object; "rings[N]" for the Maglev table of VIP index N
	Type       string // kernel map type, such as "Hash" or "PerCPUArray"
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Memlock    uint64 // bytes, as the kernel reports in /proc/self/fdinfo
}

// MapInfos describes every map of the balancer, the installed Maglev
// tables included, sorted by name.
func (b *Balancer) MapInfos() ([]MapInfo, error) {
	var out []MapInfo
	for name, m := range b.all {
		mi, err := mapInfo(name, m)
		if err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	vips, err := b.VIPs()
	if err != nil {
		return nil, err
	}
	for _, v := range vips {
		i := v.Index
		inner, err := b.ringMap(i)
		if err != nil {
			return nil, err
		}
		if inner == nil {
			continue
		}
		mi, err := mapInfo(fmt.Sprintf("%s[%d]", lbMapRings, i), inner)
		inner.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func mapInfo(name string, m *ebpf.Map) (MapInfo, error) {
	memlock, err := fdMemlock(m.FD())
	if err != nil {
		return MapInfo{}, fmt.Errorf("map %s: %w", name, err)
	}
	return MapInfo{
		Name:       name,
		Type:       m.Type().String(),
		KeySize:    m.KeySize(),
		ValueSize:  m.ValueSize(),
		MaxEntries: m.MaxEntries(),
		Memlock:    memlock,
	}, nil
}

// fdMemlock reads the memlock line of /proc/self/fdinfo/FD, the kernel's
// figure for the memory a BPF map or program holds.
func fdMemlock(fd int) (uint64, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, fmt.Errorf("read memlock: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "memlock:")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read memlock: %w", err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read memlock: %w", err)
	}
	return 0, fmt.Errorf("read memlock: no memlock line in /proc/self/fdinfo/%d", fd)
}
