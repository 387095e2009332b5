package labnet

import (
	"crypto/rand"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testenv"
)

func testPrefix(t *testing.T) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "xn" + string(b) + "-"
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "be1", true},
		{"dash and underscore", "x-lab_1", true},
		{"empty", "", false},
		{"too long", "abcdefghijklmnop", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"dot", "a.b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkName("role", tt.in, 15)
			if got := err == nil; got != tt.ok {
				t.Errorf("checkName(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
		})
	}
}

// TestNetAndDestroy builds two hosts on the bridge, exchanges a datagram,
// starts a process in one, and checks that Destroy finds and removes
// everything by the prefix alone.
func TestNetAndDestroy(t *testing.T) {
	testenv.Privileged(t)
	prefix := testPrefix(t)
	n, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Destroy(prefix, time.Second) })

	a, err := n.Host("a", netip.MustParsePrefix("198.18.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Host("b", netip.MustParsePrefix("198.18.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Host("a", netip.MustParsePrefix("198.18.0.3/24")); err == nil {
		t.Errorf("a second host named a was created")
	}

	// A datagram from a to b across the bridge.
	var conn *net.UDPConn
	if err := b.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 9000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := a.Do(func() error {
		c, err := net.Dial("udp4", "198.18.0.2:9000")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hi"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 16)
	k, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:k]) != "hi" || from.Addr() != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("received %q from %v (%v), want \"hi\" from 198.18.0.1", buf[:k], from, err)
	}

	if err := a.TxChecksumOff(HostLink); err != nil {
		t.Fatal(err)
	}
	if on, err := a.TxChecksum(HostLink); err != nil || on {
		t.Errorf("tx checksum after TxChecksumOff: on %v, err %v", on, err)
	}

	// A process started in a is found by Pids and stopped by Destroy.
	sleeper := exec.Command("sleep", "60")
	if err := a.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	pids, err := Pids(a.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, sleeper.Process.Pid) {
		t.Errorf("Pids(%s) = %v, want it to hold %d", a.Name, pids, sleeper.Process.Pid)
	}

	names, err := List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "a", prefix + "b", prefix + SwitchRole}
	if !slices.Equal(names, want) {
		t.Errorf("List = %v, want %v", names, want)
	}
	a.NS.Close()
	b.NS.Close()
	n.Switch.Close()
	removed, err := Destroy(prefix, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, want) {
		t.Errorf("Destroy removed %v, want %v", removed, want)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Errorf("the process in %s is still running after Destroy", a.Name)
	}
	if left, _ := List(prefix); len(left) != 0 {
		t.Errorf("left after Destroy: %v", left)
	}
}
