package maglev

import (
	"fmt"
	"testing"
)

// BenchmarkBuild measures a rebuild as the daemon does it: one Builder,
// the previous table's storage reused. The Maglev paper reports 1.8 ms
// (M = 65537) and 22.9 ms (M = 655373) for 1000 backends.
func BenchmarkBuild(b *testing.B) {
	for _, m := range []uint32{DefaultSize, LargeSize} {
		for _, n := range []int{10, 100, 1000} {
			for _, kind := range []string{"equal", "mixed"} {
				bs := addrs(n, 1)
				if kind == "mixed" {
					for i := range bs {
						bs[i].Weight = uint32(i%10 + 1)
					}
				}
				b.Run(fmt.Sprintf("m=%d/n=%d/%s", m, n, kind), func(b *testing.B) {
					var bld Builder
					tab, err := bld.Build(nil, bs, m)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if tab, err = bld.Build(tab, bs, m); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkBuildCold measures Build with nothing to reuse: the cost of a
// first build, allocations included.
func BenchmarkBuildCold(b *testing.B) {
	for _, m := range []uint32{DefaultSize, LargeSize} {
		for _, n := range []int{10, 100, 1000} {
			bs := addrs(n, 1)
			b.Run(fmt.Sprintf("m=%d/n=%d", m, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Build(bs, m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
