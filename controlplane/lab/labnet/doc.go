// Package labnet builds networks of Linux network namespaces joined on one
// bridge: the topology of the xdplb lab and of the end-to-end tests.
//
// A Net is a star: a switch namespace holding a bridge, and host
// namespaces each linked to it by a veth pair whose host end is called eth0.
// Every namespace name starts with the Net's prefix, so Destroy can find and
// remove all of them, with the processes running inside, even after the
// program that built them has died. Nothing is created outside those
// namespaces except their names under /run/netns.
//
// Unlike internal/netns, which is bound to a testing.TB, labnet returns
// errors: the `xdplb lab` command uses it as much as the tests do.
package labnet
