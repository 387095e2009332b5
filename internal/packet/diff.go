package packet

import (
	"fmt"
	"strings"
)

// Diff returns "" when want and got are equal. Otherwise it returns both
// in hex, 16 bytes a line with the offset, and a marker line under every
// line that differs: "^^" under each differing byte, so a test failure
// shows exactly which header field went wrong.
func Diff(want, got []byte) string {
	if string(want) == string(got) {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "frames differ (want %d bytes, got %d bytes)\n", len(want), len(got))
	n := max(len(want), len(got))
	for off := 0; off < n; off += 16 {
		w := hexLine(want, off)
		g := hexLine(got, off)
		fmt.Fprintf(&sb, "%04x want %s\n", off, w)
		fmt.Fprintf(&sb, "%04x got  %s\n", off, g)
		if w != g {
			var m strings.Builder
			for i := off; i < off+16 && i < n; i++ {
				if i < len(want) && i < len(got) && want[i] == got[i] {
					m.WriteString("   ")
				} else {
					m.WriteString("^^ ")
				}
			}
			fmt.Fprintf(&sb, "          %s\n", strings.TrimRight(m.String(), " "))
		}
	}
	return sb.String()
}

func hexLine(b []byte, off int) string {
	var sb strings.Builder
	for i := off; i < off+16; i++ {
		if i < len(b) {
			fmt.Fprintf(&sb, "%02x ", b[i])
		} else {
			sb.WriteString("-- ")
		}
	}
	return strings.TrimRight(sb.String(), " ")
}
