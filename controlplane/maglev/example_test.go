package maglev_test

import (
	"fmt"

	"github.com/xdplb/xdplb/controlplane/maglev"
)

// The control plane names backends by address and turns the table's
// indexes into whatever the data plane stores, here backend ids.
func Example() {
	backends := []maglev.Backend{
		{Name: "198.18.0.21", Weight: 1},
		{Name: "198.18.0.22", Weight: 2},
		{Name: "198.18.0.23", Weight: 0}, // drained: owns no slot
	}
	ids := []uint32{7, 8, 9}

	var b maglev.Builder
	table, err := b.Build(nil, backends, 13)
	if err != nil {
		fmt.Println(err)
		return
	}
	ring := make([]uint32, len(table))
	for slot, i := range table {
		if i >= 0 {
			ring[slot] = ids[i]
		}
	}
	fmt.Println(ring)
	fmt.Println(backends[table.Lookup(0xdeadbeef)].Name)

	_, err = b.Build(nil, backends, 65536)
	fmt.Println(err)
	// Output:
	// [8 8 8 8 7 8 8 8 8 8 7 7 7]
	// 198.18.0.21
	// build maglev table: size 65536: table size must be a prime no larger than 16777216
}
