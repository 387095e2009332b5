// Package neigh resolves the next-hop Ethernet address the balancer writes
// into a backend's frames: the backend itself when it is on the link, the
// gateway the kernel routes it through otherwise.
//
// It asks the kernel first (the route to the backend, then the neighbour
// table of the interface) and sends ARP requests itself, through
// github.com/mdlayher/arp, only when the table has no usable entry. The
// balancer transmits with XDP_TX, out of the interface it is attached to,
// so a backend the kernel routes through another interface is an error.
package neigh
