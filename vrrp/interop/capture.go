//go:build linux

package interop

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/vrrp"
)

// Capture records the VRRP advertisements and ARP packets that one
// interface receives, each with the kernel's receive timestamp, until it
// is closed. Frames the host itself sends are left out.
type Capture struct {
	f    *os.File
	done chan struct{}

	mu     sync.Mutex
	frames []Frame
	wake   chan struct{} // closed and replaced on every frame
	err    error         // why reading stopped
}

// Frame is one captured frame: a VRRP advertisement over IPv4 (IP and
// VRRP set) or an ARP packet (ARP set).
type Frame struct {
	// At is when the kernel received the frame (SO_TIMESTAMPNS).
	At     time.Time
	SrcMAC net.HardwareAddr
	DstMAC net.HardwareAddr
	// Raw is the whole Ethernet frame.
	Raw []byte

	// IP is the IPv4 header of a VRRP advertisement, VRRP its message
	// (the IP payload, trimmed to the IP total length).
	IP   *ipv4.Header
	VRRP []byte

	ARP *arp.Packet
}

// Src returns the IPv4 source of a VRRP frame.
func (f Frame) Src() netip.Addr {
	if f.IP == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(f.IP.Src.To4())
	return a
}

// Dst returns the IPv4 destination of a VRRP frame.
func (f Frame) Dst() netip.Addr {
	if f.IP == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(f.IP.Dst.To4())
	return a
}

// Advert decodes and checks the VRRP message with xdplb's packet code.
func (f Frame) Advert() (vrrp.Advertisement, error) {
	if f.IP == nil {
		return vrrp.Advertisement{}, errors.New("not a vrrp frame")
	}
	return vrrp.Parse(f.VRRP, f.Src(), f.Dst())
}

// IsAdvert reports whether f is a VRRP advertisement from src whose
// priority byte is prio.
func (f Frame) IsAdvert(src netip.Addr, prio uint8) bool {
	return f.IP != nil && len(f.VRRP) > 2 && f.Src() == src && f.VRRP[2] == prio
}

// IsGARP reports whether f is a gratuitous ARP for addr (sender and target
// address both addr) sent from the hardware address mac.
func (f Frame) IsGARP(addr netip.Addr, mac net.HardwareAddr) bool {
	return f.ARP != nil && f.ARP.SenderIP == addr && f.ARP.TargetIP == addr &&
		f.ARP.SenderHardwareAddr.String() == mac.String()
}

// Listen starts a capture on the interface ifname, in the network
// namespace of the calling thread. It needs CAP_NET_RAW.
func Listen(ifname string) (*Capture, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", ifname, err)
	}
	// Protocol 0 receives nothing until the bind names the interface, so
	// no frame of another interface slips in.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: socket: %w", ifname, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: timestamps: %w", ifname, err)
	}
	all := htons(unix.ETH_P_ALL)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: bind: %w", ifname, err)
	}
	c := &Capture{
		f:    os.NewFile(uintptr(fd), "capture-"+ifname),
		done: make(chan struct{}),
		wake: make(chan struct{}),
	}
	go c.run()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) run() {
	defer close(c.done)
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.stop(err)
		return
	}
	buf := make([]byte, 2048)
	oob := make([]byte, 128)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			c.stop(err)
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if f, ok := decode(buf[:n], timestamp(oob[:oobn])); ok {
			c.mu.Lock()
			c.frames = append(c.frames, f)
			close(c.wake)
			c.wake = make(chan struct{})
			c.mu.Unlock()
		}
	}
}

func (c *Capture) stop(err error) {
	c.mu.Lock()
	c.err = err
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

// timestamp returns the SO_TIMESTAMPNS time in the control messages, or
// the current time if there is none.
func timestamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Now()
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec)
		}
	}
	return time.Now()
}

// decode keeps VRRP over IPv4 and ARP; it drops everything else, and
// frames too short or malformed to be either.
func decode(b []byte, at time.Time) (Frame, bool) {
	if len(b) < 14 {
		return Frame{}, false
	}
	raw := append([]byte(nil), b...)
	f := Frame{At: at, DstMAC: net.HardwareAddr(raw[0:6]), SrcMAC: net.HardwareAddr(raw[6:12]), Raw: raw}
	switch binary.BigEndian.Uint16(raw[12:14]) {
	case unix.ETH_P_IP:
		h, err := ipv4.ParseHeader(raw[14:])
		if err != nil || h.Protocol != vrrp.Protocol || h.TotalLen > len(raw)-14 || h.TotalLen < h.Len {
			return Frame{}, false
		}
		f.IP, f.VRRP = h, raw[14+h.Len:14+h.TotalLen]
	case unix.ETH_P_ARP:
		var p arp.Packet
		if err := p.UnmarshalBinary(raw[14:]); err != nil {
			return Frame{}, false
		}
		f.ARP = &p
	default:
		return Frame{}, false
	}
	return f, true
}

// Close stops the capture. Frames captured so far stay readable.
func (c *Capture) Close() error {
	err := c.f.Close()
	<-c.done
	return err
}

// Mark returns the number of frames captured so far, for [Capture.Wait]
// and [Capture.Since].
func (c *Capture) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// Since returns the frames captured after mark.
func (c *Capture) Since(mark int) []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark > len(c.frames) {
		return nil
	}
	return append([]Frame(nil), c.frames[mark:]...)
}

// Wait returns the first frame after mark that match accepts, with its
// own mark (its index plus one), waiting for it until ctx ends.
func (c *Capture) Wait(ctx context.Context, mark int, match func(Frame) bool) (Frame, int, error) {
	for {
		c.mu.Lock()
		for i := mark; i < len(c.frames); i++ {
			if match(c.frames[i]) {
				f := c.frames[i]
				c.mu.Unlock()
				return f, i + 1, nil
			}
		}
		mark = max(mark, len(c.frames))
		wake, err := c.wake, c.err
		c.mu.Unlock()
		if err != nil {
			return Frame{}, mark, fmt.Errorf("capture stopped: %w", err)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Frame{}, mark, ctx.Err()
		}
	}
}

// Last returns the last frame that match accepts among those captured
// before mark end.
func (c *Capture) Last(end int, match func(Frame) bool) (Frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := min(end, len(c.frames)) - 1; i >= 0; i-- {
		if match(c.frames[i]) {
			return c.frames[i], true
		}
	}
	return Frame{}, false
}
