package e2e

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane/lab/labnet"
)

// frame is one captured frame and its direction on the captured link.
type frame struct {
	out  bool // sent by the link's namespace (PACKET_OUTGOING)
	data []byte
}

// capture records every frame crossing one link, in both directions,
// through an AF_PACKET socket opened inside the link's namespace.
type capture struct {
	what string
	fd   int
	mu   sync.Mutex
	got  []frame
	last time.Time
	done chan struct{}
}

// startCapture opens the socket in ns on link and reads until the test
// ends or stop is called.
func startCapture(t *testing.T, ns *labnet.NS, link string) *capture {
	t.Helper()
	c := &capture{what: ns.Name + "/" + link, done: make(chan struct{})}
	err := ns.Do(func() error {
		l, err := ns.Link(link)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: l.Attrs().Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket to %s: %w", link, err)
		}
		// A short receive timeout lets the reader notice stop.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("packet socket timeout: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", c.what, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 65536)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			n, from, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil {
				continue // timeout (EAGAIN) or EINTR: look at done again
			}
			ll, _ := from.(*unix.SockaddrLinklayer)
			f := frame{out: ll != nil && ll.Pkttype == unix.PACKET_OUTGOING, data: append([]byte(nil), buf[:n]...)}
			c.mu.Lock()
			c.got = append(c.got, f)
			c.last = time.Now()
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.stopNow()
		<-stopped
		unix.Close(c.fd)
	})
	return c
}

func (c *capture) stopNow() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// frames waits until the link has been quiet for quiet (at most max), and
// returns what was captured so far. Quiet is counted from the call at the
// earliest: frames the kernel already queued may not have been read yet
// (the reader is a goroutine that a loaded machine schedules late), and a
// capture that has read nothing is not yet a quiet one.
func (c *capture) frames(quiet, max time.Duration) []frame {
	called := time.Now()
	deadline := called.Add(max)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		idle := time.Since(c.last)
		c.mu.Unlock()
		if since := time.Since(called); since < idle {
			idle = since
		}
		if idle >= quiet {
			break
		}
		time.Sleep(quiet / 4)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.got...)
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// rawConn sends whole Ethernet frames out of one link.
type rawConn struct {
	fd      int
	ifindex int
}

func openRaw(ifindex int) (*rawConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	return &rawConn{fd: fd, ifindex: ifindex}, nil
}

func (r *rawConn) Write(frame []byte) (int, error) {
	// sendto needs a destination for the link layer; the frame carries
	// its own header, so only the interface matters.
	err := unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6})
	if err != nil {
		return 0, err
	}
	return len(frame), nil
}

func (r *rawConn) Close() error { return unix.Close(r.fd) }
