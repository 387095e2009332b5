package loader_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/xdplb/xdplb/controlplane/maglev"
	"github.com/xdplb/xdplb/internal/packet"
	"github.com/xdplb/xdplb/loader"
)

// TestMaglevAgreement checks that the control plane can predict the data
// plane: for 10,000 random new flows, the backend the program sends each
// one to is the one Go derives from the Maglev table it built, through
// loader.FlowHash (or SourceHash) and Table.Lookup.
func TestMaglevAgreement(t *testing.T) {
	tests := []struct {
		name     string
		ringSize uint32
		weights  []uint32
		persist  bool
		prefix   uint8
	}{
		{name: "251 slots, weighted", ringSize: 251, weights: []uint32{1, 1, 2, 3, 1, 5, 1}},
		{name: "default size, 40 backends", ringSize: loader.DefaultRingSize, weights: repeat(1, 40)},
		{name: "source persistence /24", ringSize: 1021, weights: []uint32{1, 2, 1, 2, 1}, persist: true, prefix: 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLB(t, tt.ringSize)
			// All ports, so random destination ports reach the VIP too.
			v := e.addVIP("198.18.1.100/tcp", loader.VIPConfig{Persist: tt.persist, PersistPrefix: tt.prefix})

			var mb []maglev.Backend
			var ids []uint32
			idByMAC := make(map[string]uint32)
			for i, w := range tt.weights {
				id := uint32(i + 1)
				be := e.addBackend(v, id, loader.StateActive)
				mb = append(mb, maglev.Backend{Name: be.Addr.String(), Weight: w})
				ids = append(ids, id)
				idByMAC[be.MAC.String()] = id
			}
			table, err := maglev.Build(mb, tt.ringSize)
			if err != nil {
				t.Fatal(err)
			}
			ring := make([]uint32, len(table))
			for slot, idx := range table {
				ring[slot] = ids[idx]
			}
			e.must(e.b.SetRing(v.Index, ring))

			rng := rand.New(rand.NewPCG(1, uint64(tt.ringSize)))
			seen := make(map[uint32]int)
			for i := 0; i < 10000; i++ {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))}), uint16(1024+rng.IntN(64512)))
				dst := netip.AddrPortFrom(v.VIP.Addr, uint16(1+rng.IntN(65535)))
				var h uint32
				if tt.persist {
					h = loader.SourceHash(e.opts.HashSeed, src.Addr(), tt.prefix)
				} else {
					h = loader.FlowHash(e.opts.HashSeed, src, dst, loader.TCP)
				}
				want := ids[table.Lookup(h)]
				if slot := e.b.Slot(v, src, dst); ring[slot] != want {
					t.Fatalf("%s -> %s: Slot gives backend %d, FlowHash and Lookup give %d", src, dst, ring[slot], want)
				}

				p := pkt{src: src, dst: dst, flags: packet.TCPSyn}
				act, out := e.run(p.frame())
				if act != loader.XDPTx {
					t.Fatalf("%s -> %s: action %v, want XDP_TX", src, dst, act)
				}
				got := idByMAC[net.HardwareAddr(out[0:6]).String()]
				if got != want {
					t.Fatalf("%s -> %s: program chose backend %d, Go predicts %d", src, dst, got, want)
				}
				seen[got]++
			}
			if len(seen) != len(ids) {
				t.Errorf("10,000 flows reached %d of %d backends", len(seen), len(ids))
			}
		})
	}
}

func repeat(v uint32, n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = v
	}
	return s
}
