package config

import (
	"fmt"
	"strings"
	"testing"
)

// bigConfig writes n services of 10 backends each, every one with an HTTP
// check: the size issue 3 benchmarks reloads at (1,000 x 10).
func bigConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("director:\n  interface: eth0\n  max_vips: 65536\n  max_backends: 1048576\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: svc-%d\n    vip: 198.18.%d.%d\n    port: 80\n    forwarding: dr\n    backends:\n", i, i/250, i%250+1)
		for j := range 10 {
			fmt.Fprintf(&b, "      - address: 198.19.%d.%d\n        weight: %d\n", j, i%250+1, j+1)
		}
		b.WriteString("    health_check:\n      type: http\n      path: /healthz\n      interval: 1s\n      timeout: 500ms\n")
	}
	return []byte(b.String())
}

func BenchmarkParse1000x10(b *testing.B) {
	data := bigConfig(1000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
