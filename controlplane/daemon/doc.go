// Package daemon is the xdplb daemon: it attaches the balancer (or adopts
// the one an earlier run pinned), and keeps its maps equal to the
// configuration, to the runtime changes made through the local API, to the
// health of the backends and to their next-hop MACs.
package daemon
