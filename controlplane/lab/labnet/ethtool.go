package labnet

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value (linux/ethtool.h).
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with the ifr_data member of its union.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // rest of the union
}

// ethtool sends one ETHTOOL_[GS]* value command for link and returns the
// value the kernel wrote back.
func (n *NS) ethtool(link string, cmd, data uint32) (uint32, error) {
	v := ethtoolValue{cmd: cmd, data: data}
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var ifr ifreqData
		copy(ifr.name[:], link)
		ifr.data = unsafe.Pointer(&v)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&v)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("namespace %s: ethtool %#x on %s: %w", n.Name, cmd, link, err)
	}
	return v.data, nil
}

// TxChecksumOff turns transmit checksum offload off on link, as
// `ethtool -K LINK tx off` does. A sender on veth otherwise hands the
// frame over with the TCP or UDP checksum left partial: the kernel would
// finish it on receive, but a frame that XDP forwards leaves with it wrong.
func (n *NS) TxChecksumOff(link string) error {
	_, err := n.ethtool(link, unix.ETHTOOL_STXCSUM, 0)
	return err
}

// TxChecksum reports whether transmit checksum offload is on for link.
func (n *NS) TxChecksum(link string) (bool, error) {
	v, err := n.ethtool(link, unix.ETHTOOL_GTXCSUM, 0)
	return v != 0, err
}
