// Package controlplane is the control plane of the xdplb director: it keeps
// the XDP data plane equal to the configuration and to the health of the
// backends.
package controlplane
