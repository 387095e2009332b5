// Package netns builds throw-away network topologies for tests: named
// network namespaces, veth pairs and bridges between them, addresses,
// neighbours and routes, code and commands run inside a namespace, and
// transmit checksum offload switched off the way `ethtool -K dev tx off`
// does. Everything is removed in t.Cleanup, and every name starts with a
// prefix unique to the test, so parallel runs never collide.
package netns
