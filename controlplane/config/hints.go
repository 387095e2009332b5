package config

import (
	"reflect"
	"strings"
)

// unknownField explains a key that is not part of the schema: why, when
// it is a known mistake (a keepalived keyword, a backend port), or the
// closest valid key, or else the keys allowed at that place. guess is the
// field the key was probably meant to be, or "".
func unknownField(t reflect.Type, name string, fields []field) (msg, guess string) {
	if h, g := keywordHint(t, name); h != "" {
		return h, g
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if s := closest(name, names); s != "" {
		return "unknown field; did you mean " + s + "?", s
	}
	return "unknown field; the fields here are " + orList(names), ""
}

// keywordHint answers keys that operators bring from keepalived or that
// cannot exist in this design.
func keywordHint(t reflect.Type, name string) (msg, guess string) {
	switch t {
	case reflect.TypeFor[Backend]():
		switch name {
		case "port":
			return "a backend has no port of its own: DR and TUN deliver the packet unchanged, so the backend receives it on the service's port; remove it (to check another port, set health_check.port)", ""
		case "ip", "addr":
			return "unknown field; did you mean address?", "address"
		}
	case reflect.TypeFor[Service]():
		switch name {
		case "lb_kind":
			return "unknown field; keepalived's lb_kind is forwarding here (dr or tun)", "forwarding"
		case "lb_algo":
			return "unknown field; keepalived's lb_algo is scheduler here (maglev, source-hash or failover)", "scheduler"
		case "delay_loop":
			return "unknown field; keepalived's delay_loop is health_check.interval here", ""
		case "real_server", "real_servers":
			return "unknown field; real servers are listed under backends", "backends"
		case "persistence_timeout":
			return "unknown field; there is no persistence timeout: established flows keep their backend through the flow table, and scheduler: source-hash keeps a client on one backend", ""
		case "ip", "address", "virtual_server":
			return "unknown field; the service's address is vip", "vip"
		}
	case reflect.TypeFor[HealthCheck]():
		switch name {
		case "connect_timeout":
			return "unknown field; keepalived's connect_timeout is timeout here", "timeout"
		case "connect_port":
			return "unknown field; keepalived's connect_port is port here", "port"
		case "delay_loop":
			return "unknown field; keepalived's delay_loop is interval here", "interval"
		case "status_code":
			return "unknown field; did you mean expect_status?", "expect_status"
		case "url":
			return "unknown field; give the URL's path as path (and its host as host)", ""
		case "retry", "retries":
			return "unknown field; use fall (consecutive failures before a backend goes down)", "fall"
		}
	case reflect.TypeFor[Instance]():
		switch name {
		case "advert_int":
			return "unknown field; keepalived's advert_int is advert_interval here, with a unit (\"1s\", \"100ms\")", "advert_interval"
		case "virtual_ipaddress":
			return "unknown field; keepalived's virtual_ipaddress is virtual_addresses here", "virtual_addresses"
		case "nopreempt":
			return "unknown field; write preempt: false", "preempt"
		case "state":
			return "unknown field; there is no initial state: every instance starts as backup and the highest priority becomes master; remove it", ""
		case "unicast_peer":
			return "unknown field; did you mean unicast_peers?", "unicast_peers"
		case "vrrp_version":
			return "unknown field; did you mean version?", "version"
		case "auth_type", "auth_pass":
			return "unknown field; write authentication: {type: pass, password: ...}", ""
		}
	case reflect.TypeFor[Authentication]():
		switch name {
		case "auth_type":
			return "unknown field; did you mean type?", "type"
		case "auth_pass":
			return "unknown field; did you mean password?", "password"
		}
	}
	return "", ""
}

// valueHint explains an enum value that operators bring from IPVS or
// keepalived.
func valueHint(t reflect.Type, v string) string {
	switch t {
	case reflect.TypeFor[Forwarding]():
		switch strings.ToLower(v) {
		case "nat", "masq", "masquerade":
			return "NAT is not supported: backends must answer clients directly"
		case "direct", "route", "gatewaying":
			return "direct routing is dr"
		case "tunnel", "ipip":
			return "IPIP tunnelling is tun"
		}
	case reflect.TypeFor[Scheduler]():
		switch strings.ToLower(v) {
		case "sh":
			return "IPVS sh is source-hash"
		case "mh":
			return "IPVS mh is maglev"
		case "fo":
			return "IPVS fo is failover"
		case "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sed", "nq", "ovf":
			return "round-robin and least-connection schedulers are not available: new flows are spread by consistent hashing, and maglev with weights is the closest"
		}
	case reflect.TypeFor[AuthType]():
		if strings.EqualFold(v, "ah") {
			return "IPsec AH authentication is not supported"
		}
	}
	return ""
}

// missingHint says what to write for a required field the file leaves out.
// t is the struct holding the field, nil when not known.
func missingHint(t reflect.Type, f field) string {
	switch f.name {
	case "health_check":
		return "expected a mapping with at least type (type: none forwards without checking)"
	case "backends":
		return "expected a list of backends, each with an address"
	case "virtual_addresses":
		return "expected a list of the addresses this instance holds, such as [198.18.1.100/32]"
	case "command":
		return "expected the command as a list, such as [\"/usr/local/bin/check\", \"--quiet\"]"
	case "instances":
		if t == nil || t == reflect.TypeFor[SyncGroup]() {
			return "expected a list of instance names"
		}
	case "director":
		return "expected a mapping with at least interface"
	case "interface":
		return "expected the name of a network interface, such as eth0"
	case "name":
		if t == reflect.TypeFor[Service]() {
			return "expected a name for the service, such as web"
		}
		return "expected a name, such as VI_1"
	case "port":
		if t == reflect.TypeFor[Service]() {
			return "expected a whole number from 0 to 65535 (0 forwards every port of the VIP)"
		}
	case "address":
		return "expected the backend's IPv4 address"
	case "virtual_router_id":
		return "expected a whole number from 1 to 255, the same on every director of this virtual router"
	case "password":
		return "expected the shared password, 1 to 8 bytes"
	case "service":
		return "expected the name of a service of this file"
	}
	return "expected " + expected(f)
}

// closest returns the candidate that name most likely misspells, or "".
// Case, '-' and '_' are ignored first (healthCheck, health-check); then a
// small edit distance is accepted.
func closest(name string, candidates []string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	for _, c := range candidates {
		if norm(c) == norm(name) {
			return c
		}
	}
	limit := 1
	if len(name) >= 5 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if dist := editDistance(name, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and swaps of two adjacent
// characters each cost 1, so "vpi" is one edit from "vip".
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
