// Package e2e holds xdplb's end-to-end tests: real TCP connections between
// network namespaces, forwarded by the XDP programs attached to veth links,
// with the frames on the wire captured and checked byte for byte.
//
// The package has no code of its own outside its tests; the topology comes
// from controlplane/lab/labnet, which the `xdplb lab` command shares.
package e2e
