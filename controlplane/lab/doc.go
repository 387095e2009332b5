// Package lab runs the whole of xdplb on one machine: a client, two
// directors and three backends in network namespaces on one bridge, all
// addressed in 198.18.0.0/15, as `xdplb lab up|down|demo` shows it.
//
// Each director runs `xdplb run` with a configuration the lab writes: two
// services on the same backends, one forwarding with dr and one with tun,
// and a VRRP instance that moves both VIPs between the directors. Each
// backend runs `xdplb lab backend`, a small HTTP server that answers with
// its name and serves a health endpoint that a file can turn to failing,
// holds the VIPs on lo without answering ARP for them, and runs the decap
// program for the tun service.
//
// Every namespace name starts with a fixed prefix, and every file lives
// under one run directory and one bpffs directory, so Down removes a lab
// completely even when the process that built it died half-way.
//
// Demo drives the lab through what an operator buys xdplb for, checking
// each step and measuring it against its bound: requests spread over the
// backends by weight through both VIPs, a failed backend taken out by its
// health check, the master director's death survived by the backup.
package lab
