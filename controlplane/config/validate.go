package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
)

// checker runs the checks that involve more than one value: uniqueness,
// cross-references, and rules that depend on another field. It skips any
// rule whose inputs failed to decode, so one mistake is reported once.
type checker struct {
	src   *source
	probs []Problem
}

func validate(c *Config, src *source) []Problem {
	k := &checker{src: src}
	k.director(c)
	k.services(c)
	k.vrrp(c)
	return k.probs
}

func (k *checker) errorf(path, format string, args ...any) {
	k.probs = append(k.probs, k.src.problem(path, format, args...))
}

// ok reports whether all paths decoded (or were left to their defaults).
func (k *checker) ok(paths ...string) bool {
	for _, p := range paths {
		if k.src.isBad(p) {
			return false
		}
	}
	return true
}

func (k *checker) given(path string) bool { return k.src.isGiven(path) }

// line is where path is written, for "already used at line N" messages.
func (k *checker) line(path string) int { return k.src.locate(path).line }

func (k *checker) director(c *Config) {
	d := c.Director
	if k.given("director.interface") {
		k.ifname("director.interface", d.Interface)
	}
	if d.SourceAddress.IsValid() {
		k.unicast("director.source_address", d.SourceAddress, "the tunnel source address")
	} else if k.ok("director.source_address") {
		var tun []string
		for _, s := range c.Services {
			if s.Forwarding == ForwardTUN {
				tun = append(tun, s.Name)
			}
		}
		if len(tun) > 0 {
			k.errorf("director.source_address", "missing; services with forwarding: tun (%s) need it as the outer source address of their IPIP packets", strings.Join(tun, ", "))
		}
	}
	if d.MetricsListen != "" {
		k.listenAddr("director.metrics_listen", d.MetricsListen)
	}
	for _, p := range []struct{ path, dir string }{
		{"director.api_socket", d.APISocket},
		{"director.state_dir", d.StateDir},
		{"director.pin_root", d.PinRoot},
	} {
		if k.given(p.path) && k.ok(p.path) && !filepath.IsAbs(p.dir) {
			k.errorf(p.path, "%q is not an absolute path; expected a path starting with /", p.dir)
		}
	}
	// sun_path holds 108 bytes including the terminating NUL.
	if k.ok("director.api_socket") && len(d.APISocket) > 107 {
		k.errorf("director.api_socket", "is %d bytes long; a unix socket path holds at most 107", len(d.APISocket))
	}
	if k.ok("director.ring_size") && !isPrime(d.RingSize) {
		below, above := primeNear(d.RingSize)
		k.errorf("director.ring_size", "%d is not a prime; Maglev needs a prime table size, such as %d or %d", d.RingSize, below, above)
	}
	if k.ok("director.max_vips") && len(c.Services) > int(d.MaxVIPs) {
		k.errorf(index("services", int(d.MaxVIPs)), "%d services do not fit in director.max_vips (%d); raise max_vips", len(c.Services), d.MaxVIPs)
	}
	if k.ok("director.max_backends") {
		// Every backend of every service takes one slot; slot 0 is never used.
		total := 0
		for i, s := range c.Services {
			if total+len(s.Backends) > int(d.MaxBackends)-1 {
				k.errorf(index("services", i)+".backends", "the services up to this one have %d backends, more than director.max_backends (%d) leaves room for (%d: slot 0 is reserved); raise max_backends",
					total+len(s.Backends), d.MaxBackends, d.MaxBackends-1)
				break
			}
			total += len(s.Backends)
		}
	}
}

// vipKey identifies what the data plane matches a service on.
type vipKey struct {
	addr  netip.Addr
	port  uint16
	proto Protocol
}

func (k *checker) services(c *Config) {
	names := make(map[string]int)
	vips := make(map[vipKey]int)
	for i, s := range c.Services {
		sp := index("services", i)
		if k.given(sp + ".name") {
			if k.label(sp+".name", s.Name) {
				if j, dup := names[s.Name]; dup {
					k.errorf(sp+".name", "%q is already the name of services[%d] (line %d); service names must be unique", s.Name, j, k.line(index("services", j)+".name"))
				} else {
					names[s.Name] = i
				}
			}
		}
		if s.VIP.IsValid() {
			k.unicast(sp+".vip", s.VIP, "a VIP")
		}
		if s.VIP.IsValid() && k.ok(sp+".vip", sp+".port", sp+".protocol") && k.given(sp+".port") {
			key := vipKey{s.VIP, s.Port, s.Protocol}
			if j, dup := vips[key]; dup {
				k.errorf(sp+".vip", "%s port %d/%s is already served by services[%d] (%s, line %d); each VIP, port and protocol belongs to one service",
					s.VIP, s.Port, s.Protocol, j, c.Services[j].Name, k.line(index("services", j)))
			} else {
				vips[key] = i
			}
		}
		if k.given(sp+".persistence_granularity") && k.ok(sp+".scheduler") && s.Scheduler != SchedulerSourceHash {
			k.errorf(sp+".persistence_granularity", "applies only to scheduler: source-hash (this service uses %s); remove it", s.Scheduler)
		}
		k.backends(c, s, sp)
		k.healthCheck(s, sp)
	}
}

func (k *checker) backends(c *Config, s Service, sp string) {
	seen := make(map[netip.Addr]int)
	for j, b := range s.Backends {
		bp := index(sp+".backends", j)
		if !b.Address.IsValid() {
			continue
		}
		if !k.unicast(bp+".address", b.Address, "a backend") {
			continue
		}
		if b.Address == s.VIP {
			k.errorf(bp+".address", "%s is the service's VIP; a backend must be a real server", b.Address)
			continue
		}
		if first, dup := seen[b.Address]; dup {
			k.errorf(bp+".address", "%s is already backends[%d] of this service (line %d); list each backend once and use weight for a bigger share",
				b.Address, first, k.line(index(sp+".backends", first)+".address"))
			continue
		}
		seen[b.Address] = j
	}
	if k.ok("director.ring_size") && len(s.Backends) > int(c.Director.RingSize) {
		k.errorf(sp+".backends", "%d backends do not fit in a Maglev table of director.ring_size (%d) entries; raise ring_size (ideally to 100 times the number of backends)",
			len(s.Backends), c.Director.RingSize)
	}
}

// checkField is a health-check field that only some check types use.
type checkField struct {
	name  string
	types []CheckType
}

// checkFields lists the health-check fields that only some check types use.
func checkFields() []checkField {
	return []checkField{
		{"port", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
		{"path", []CheckType{CheckHTTP, CheckHTTPS}},
		{"host", []CheckType{CheckHTTP, CheckHTTPS}},
		{"expect_status", []CheckType{CheckHTTP, CheckHTTPS}},
		{"expect_body", []CheckType{CheckHTTP, CheckHTTPS}},
		{"tls_skip_verify", []CheckType{CheckHTTPS}},
		{"command", []CheckType{CheckExec}},
		{"interval", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
		{"timeout", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
		{"rise", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
		{"fall", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
		{"on_failure", []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckExec}},
	}
}

func (k *checker) healthCheck(s Service, sp string) {
	hp := sp + ".health_check"
	h := s.HealthCheck
	if !k.given(hp) || !k.ok(hp+".type") {
		return
	}
	for _, cf := range checkFields() {
		p := hp + "." + cf.name
		if !k.given(p) || slices.Contains(cf.types, h.Type) {
			continue
		}
		if h.Type == CheckNone {
			k.errorf(p, "has no effect with type: none (no check runs); remove it")
			continue
		}
		names := make([]string, len(cf.types))
		for i, t := range cf.types {
			names[i] = string(t)
		}
		k.errorf(p, "applies only to %s checks, not %s; remove it", orList(names), h.Type)
	}
	needsPort := h.Type == CheckTCP || h.Type == CheckHTTP || h.Type == CheckHTTPS
	if needsPort && h.Port == 0 && k.ok(hp+".port", sp+".port") && k.given(sp+".port") {
		k.errorf(hp+".port", "missing; the service forwards every port (port: 0), so say which port the %s check connects to", h.Type)
	}
	if h.Type == CheckHTTP || h.Type == CheckHTTPS {
		if k.given(hp+".path") && k.ok(hp+".path") && (!strings.HasPrefix(h.Path, "/") || hasSpaceOrControl(h.Path)) {
			k.errorf(hp+".path", "%q is not a URL path; expected a path starting with / and without spaces, such as /healthz", h.Path)
		}
		if k.given(hp+".host") && k.ok(hp+".host") && (h.Host == "" || hasSpaceOrControl(h.Host) || strings.ContainsAny(h.Host, "/?#@")) {
			k.errorf(hp+".host", "%q is not a host name; expected a name such as www.example.com, or leave host out to send the backend address", h.Host)
		}
	}
	if h.Type == CheckExec && k.ok(hp+".command") {
		if !k.given(hp + ".command") {
			k.errorf(hp+".command", "missing; an exec check needs the command as a list, such as [\"/usr/local/bin/check\", \"{{.Address}}\"]")
		} else {
			k.command(hp+".command", h.Command, true)
		}
	}
	// Without a type (an error of its own, or a misspelt key) no
	// defaults were applied: timeouts would only add a follow-on error.
	if h.Type != CheckNone && h.Type != "" {
		k.timeoutBelowInterval(hp, h.Timeout, h.Interval, DefaultCheckInterval, "a check must time out before the next one is due")
	}
}

// timeoutBelowInterval checks timeout < interval at path.timeout (or
// path.interval when only the interval was written).
func (k *checker) timeoutBelowInterval(path string, timeout, interval, defInterval time.Duration, why string) {
	tp, ip := path+".timeout", path+".interval"
	if !k.ok(tp, ip) || timeout < interval {
		return
	}
	ivl := fmtDuration(interval)
	if !k.given(ip) {
		ivl += ", the default"
	}
	if k.given(tp) {
		k.errorf(tp, "%s is not shorter than interval (%s); %s", fmtDuration(timeout), ivl, why)
		return
	}
	k.errorf(ip, "%s is too short for the default timeout; set timeout below it", fmtDuration(interval))
}

// CommandVars is what the arguments of an exec health check may refer to,
// as Go templates: ["/etc/xdplb/check", "{{.Address}}", "{{.Port}}"].
type CommandVars struct {
	Service string // the service's name
	VIP     string // the service's address
	Address string // the backend's address
	Port    uint16 // the check port; 0 for a port-0 service without health_check.port
}

// ExpandCommand returns the command of an exec check with the templates in
// its arguments filled from v. Parse has checked that every argument is a
// valid template over CommandVars.
func (h HealthCheck) ExpandCommand(v CommandVars) ([]string, error) {
	out := make([]string, len(h.Command))
	for i, arg := range h.Command {
		s, err := expandArg(arg, v)
		if err != nil {
			return nil, fmt.Errorf("expand command[%d] %q: %w", i, arg, err)
		}
		out[i] = s
	}
	return out, nil
}

func expandArg(arg string, v CommandVars) (string, error) {
	if !strings.Contains(arg, "{{") {
		return arg, nil
	}
	t, err := template.New("arg").Option("missingkey=error").Parse(arg)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// command checks a command line: an absolute program path (commands run
// without a shell and without a PATH search) and, when templated, valid
// templates over CommandVars.
func (k *checker) command(path string, cmd []string, templated bool) {
	if len(cmd) == 0 {
		k.errorf(path, "the list is empty; expected the program and its arguments, such as [\"/usr/local/bin/check\"]")
		return
	}
	if !k.ok(index(path, 0)) {
		return
	}
	if !strings.HasPrefix(cmd[0], "/") {
		k.errorf(index(path, 0), "%q is not an absolute path; commands run without a shell or PATH search, so write the program's full path, such as /usr/bin/%s", cmd[0], filepath.Base(cmd[0]))
	}
	if !templated {
		return
	}
	sample := CommandVars{Service: "web", VIP: "198.18.1.100", Address: "198.18.0.21", Port: 80}
	for i, arg := range cmd {
		if _, err := expandArg(arg, sample); err != nil && k.ok(index(path, i)) {
			k.errorf(index(path, i), "%q is not a valid template: %s; the fields are {{.Address}}, {{.Port}}, {{.Service}} and {{.VIP}}", arg, templateError(err))
		}
	}
}

// templateError strips text/template's location prefix, which refers to
// an unnamed template rather than the file.
func templateError(err error) string {
	msg := err.Error()
	if _, field, ok := strings.Cut(msg, "can't evaluate field "); ok {
		field, _, _ = strings.Cut(field, " ")
		return "there is no field ." + field
	}
	for _, prefix := range []string{"template: arg:1: ", "template: arg:1:"} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			if i := strings.Index(rest, ": "); i >= 0 && strings.HasPrefix(rest, "executing") {
				rest = rest[i+2:]
			}
			return rest
		}
	}
	return msg
}

func (k *checker) vrrp(c *Config) {
	services := make(map[string]bool, len(c.Services))
	for _, s := range c.Services {
		services[s.Name] = true
	}
	names := make(map[string]int)
	type vridKey struct {
		ifname string
		vrid   uint8
	}
	vrids := make(map[vridKey]int)
	addrs := make(map[netip.Addr]string) // virtual address -> path of its first use
	for i, in := range c.VRRP.Instances {
		ip := index("vrrp.instances", i)
		if k.given(ip+".name") && k.name(ip+".name", in.Name) {
			if j, dup := names[in.Name]; dup {
				k.errorf(ip+".name", "%q is already the name of vrrp.instances[%d] (line %d); instance names must be unique", in.Name, j, k.line(index("vrrp.instances", j)+".name"))
			} else {
				names[in.Name] = i
			}
		}
		ifOK := k.given(ip+".interface") && k.ifname(ip+".interface", in.Interface)
		if ifOK && k.given(ip+".virtual_router_id") && k.ok(ip+".virtual_router_id") {
			key := vridKey{in.Interface, in.VirtualRouterID}
			if j, dup := vrids[key]; dup {
				k.errorf(ip+".virtual_router_id", "%d is already used on %s by %s (line %d); instances on one interface need different virtual router ids",
					in.VirtualRouterID, in.Interface, c.VRRP.Instances[j].Name, k.line(index("vrrp.instances", j)+".virtual_router_id"))
			} else {
				vrids[key] = i
			}
		}
		k.advertInterval(ip, in)
		if k.ok(ip+".preempt", ip+".priority") && !in.Preempt && in.Priority == 255 {
			k.errorf(ip+".preempt", "an instance with priority 255 owns its addresses and always preempts (RFC 5798 section 6.4.1); remove preempt: false or lower the priority")
		}
		if k.given(ip+".preempt_delay") && k.ok(ip+".preempt") && !in.Preempt {
			k.errorf(ip+".preempt_delay", "has no effect with preempt: false; remove it")
		}
		k.authentication(ip, in)
		for j, p := range in.VirtualAddresses {
			ap := index(ip+".virtual_addresses", j)
			if !p.IsValid() || !k.unicast(ap, p.Addr(), "a virtual address") {
				continue
			}
			if first, dup := addrs[p.Addr()]; dup {
				k.errorf(ap, "%s is already a virtual address at %s (line %d); each address belongs to one instance", p.Addr(), first, k.line(first))
				continue
			}
			addrs[p.Addr()] = ap
		}
		k.unicastPeers(ip, in)
		k.uniqueIfnames(ip+".track_interfaces", in.TrackInterfaces)
		k.trackScripts(ip, in.TrackScripts)
		k.trackServices(ip, in.TrackServices, services, c.Services)
		for _, hook := range []struct {
			name string
			cmd  []string
		}{{"notify", in.Notify}, {"notify_master", in.NotifyMaster}, {"notify_backup", in.NotifyBackup}, {"notify_fault", in.NotifyFault}} {
			if len(hook.cmd) > 0 && k.ok(ip+"."+hook.name) {
				k.command(ip+"."+hook.name, hook.cmd, false)
			}
		}
	}
	k.syncGroups(c, names)
}

func (k *checker) advertInterval(ip string, in Instance) {
	ap := ip + ".advert_interval"
	if !k.ok(ap, ip+".version") {
		return
	}
	a := in.AdvertInterval
	switch in.Version {
	case 2:
		if a < time.Second || a > 255*time.Second || a%time.Second != 0 {
			k.errorf(ap, "%s is not allowed with version 2, which advertises in whole seconds from 1s to 255s (version 3 allows steps of 10ms up to 40.95s)", fmtDuration(a))
		}
	case 3:
		if a < 10*time.Millisecond || a > 40950*time.Millisecond || a%(10*time.Millisecond) != 0 {
			k.errorf(ap, "%s is not allowed with version 3, which advertises in hundredths of a second from 10ms to 40.95s", fmtDuration(a))
		}
	}
}

func (k *checker) authentication(ip string, in Instance) {
	ap := ip + ".authentication"
	if in.Authentication == nil || !k.ok(ap) {
		return
	}
	if k.ok(ip+".version") && in.Version == 3 {
		k.errorf(ap, "VRRP version 3 has no authentication (RFC 5798 removed it); remove it, or use version: 2")
		return
	}
	pp := ap + ".password"
	if !k.given(pp) || !k.ok(pp) {
		return
	}
	// The password is never echoed: errors end up in logs.
	switch n := len(in.Authentication.Password); {
	case n == 0:
		k.errorf(pp, "is empty; expected 1 to 8 bytes")
	case n > 8:
		k.errorf(pp, "is %d bytes long; a VRRPv2 advert carries at most 8 (keepalived silently keeps the first 8: write those)", n)
	}
}

func (k *checker) unicastPeers(ip string, in Instance) {
	sp, pp := ip+".unicast_src_ip", ip+".unicast_peers"
	if in.UnicastSrcIP.IsValid() {
		k.unicast(sp, in.UnicastSrcIP, "a unicast source address")
		if len(in.UnicastPeers) == 0 && k.ok(pp) {
			k.errorf(sp, "applies only with unicast_peers (without them, adverts go to the multicast group 224.0.0.18); add the peers or remove it")
		}
	}
	seen := make(map[netip.Addr]int)
	for j, a := range in.UnicastPeers {
		p := index(pp, j)
		if !a.IsValid() || !k.unicast(p, a, "a unicast peer") {
			continue
		}
		if a == in.UnicastSrcIP {
			k.errorf(p, "%s is this director's own unicast_src_ip; list only the other directors", a)
			continue
		}
		if first, dup := seen[a]; dup {
			k.errorf(p, "%s is already unicast_peers[%d]; list each peer once", a, first)
			continue
		}
		seen[a] = j
	}
}

func (k *checker) uniqueIfnames(path string, names []string) {
	seen := make(map[string]int)
	for j, n := range names {
		p := index(path, j)
		if !k.ok(p) || !k.ifname(p, n) {
			continue
		}
		if first, dup := seen[n]; dup {
			k.errorf(p, "%q is already %s[%d]; list each interface once", n, path[strings.LastIndex(path, ".")+1:], first)
			continue
		}
		seen[n] = j
	}
}

func (k *checker) trackScripts(ip string, scripts []TrackScript) {
	seen := make(map[string]int)
	for j, ts := range scripts {
		tp := index(ip+".track_scripts", j)
		if k.given(tp+".name") && k.name(tp+".name", ts.Name) {
			if first, dup := seen[ts.Name]; dup {
				k.errorf(tp+".name", "%q is already the name of track_scripts[%d]; script names must be unique within an instance", ts.Name, first)
			} else {
				seen[ts.Name] = j
			}
		}
		if k.given(tp+".command") && k.ok(tp+".command") {
			k.command(tp+".command", ts.Command, false)
		}
		k.timeoutBelowInterval(tp, ts.Timeout, ts.Interval, DefaultScriptInterval, "a script must time out before the next run is due")
	}
}

func (k *checker) trackServices(ip string, tracked []TrackService, services map[string]bool, all []Service) {
	seen := make(map[string]int)
	for j, ts := range tracked {
		p := index(ip+".track_services", j) + ".service"
		if !k.given(p) || !k.ok(p) {
			continue
		}
		if !services[ts.Service] {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.Name
			}
			if len(names) == 0 {
				k.errorf(p, "there is no service named %q; this file defines no services", ts.Service)
			} else {
				k.errorf(p, "there is no service named %q; the services are %s", ts.Service, orList(names))
			}
			continue
		}
		if first, dup := seen[ts.Service]; dup {
			k.errorf(p, "%q is already tracked by track_services[%d]; track each service once", ts.Service, first)
			continue
		}
		seen[ts.Service] = j
	}
}

func (k *checker) syncGroups(c *Config, instances map[string]int) {
	groups := make(map[string]int)
	member := make(map[string]string) // instance -> path of its first membership
	for i, g := range c.VRRP.SyncGroups {
		gp := index("vrrp.sync_groups", i)
		if k.given(gp+".name") && k.name(gp+".name", g.Name) {
			if j, dup := groups[g.Name]; dup {
				k.errorf(gp+".name", "%q is already the name of vrrp.sync_groups[%d]; sync group names must be unique", g.Name, j)
			} else {
				groups[g.Name] = i
			}
		}
		for j, name := range g.Instances {
			p := index(gp+".instances", j)
			if !k.ok(p) {
				continue
			}
			if _, ok := instances[name]; !ok {
				k.errorf(p, "there is no vrrp instance named %q", name)
				continue
			}
			if first, dup := member[name]; dup {
				k.errorf(p, "%q is already in a sync group at %s (line %d); an instance belongs to at most one group", name, first, k.line(first))
				continue
			}
			member[name] = p
		}
	}
}

// unicast checks that a is an address a host can own and be reached at.
func (k *checker) unicast(path string, a netip.Addr, what string) bool {
	var why string
	switch {
	case a.IsUnspecified():
		why = "the unspecified address"
	case a.IsLoopback():
		why = "a loopback address"
	case a.IsMulticast():
		why = "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	default:
		return true
	}
	k.errorf(path, "%s is %s; %s must be a unicast address", a, why, what)
	return false
}

// ifname checks a Linux interface name (dev_valid_name).
func (k *checker) ifname(path, name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/:") || hasSpaceOrControl(name) {
		k.errorf(path, "%q is not a valid interface name; expected 1 to 15 characters without spaces, '/' or ':', such as eth0", name)
		return false
	}
	return true
}

// label checks a service name: a DNS label, so that it is safe in metric
// labels, API paths and log keys.
func (k *checker) label(path, name string) bool {
	valid := len(name) >= 1 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			valid = false
		}
	}
	if !valid {
		k.errorf(path, "%q is not a valid service name; expected 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit, such as mysql-write", name)
	}
	return valid
}

// name checks the name of a VRRP instance, script or sync group, which
// keepalived users write as VI_1 or chk_httpd.
func (k *checker) name(path, name string) bool {
	valid := len(name) >= 1 && len(name) <= 63
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			valid = false
		}
	}
	if !valid {
		k.errorf(path, "%q is not a valid name; expected 1 to 63 letters, digits, '-', '_' or '.', such as VI_1", name)
	}
	return valid
}

// listenAddr checks a host:port to listen on.
func (k *checker) listenAddr(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		k.errorf(path, "%q is not host:port; expected an address and port such as 127.0.0.1:9469 (or :9469 for every address)", s)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && numErr.Err == strconv.ErrRange {
			k.errorf(path, "port %s is out of range; expected 0 to 65535", port)
		} else {
			k.errorf(path, "%q is not a port number; expected a number such as 9469", port)
		}
		return
	}
	if host == "" || host == "localhost" {
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		k.errorf(path, "%q is not an IP address; expected an address such as 127.0.0.1, localhost, or nothing before the colon for every address", host)
	}
}

func hasSpaceOrControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// isPrime reports whether n is prime, by trial division (n < 2^25).
func isPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	for d := uint32(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// primeNear returns the primes closest to n from below and above.
func primeNear(n uint32) (below, above uint32) {
	for below = n - 1; below > 2 && !isPrime(below); below-- {
	}
	for above = n + 1; !isPrime(above); above++ {
	}
	return below, above
}
