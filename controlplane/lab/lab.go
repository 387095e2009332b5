package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdplb/xdplb/controlplane/api"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
	"github.com/xdplb/xdplb/loader"
)

// Where `xdplb lab` puts a lab. Down finds everything from these three.
const (
	DefaultPrefix  = "xlab-"
	DefaultRunDir  = "/run/xdplb-lab"
	DefaultPinRoot = "/sys/fs/bpf/xdplb-lab"
)

// ErrExists is returned by Up when namespaces of the lab's prefix exist.
var ErrExists = errors.New("a lab is already up")

// childEnv marks the environment of every process the lab starts. Up
// refuses to run where it is set: a lab process that built a lab would
// start processes that build labs, without end.
const childEnv = "XDPLB_LAB_CHILD"

// binary returns the xdplb executable the lab runs: o.Binary, or the
// running executable unless that is a test binary, which would run its
// tests instead of `xdplb run`.
func (o Options) binary() (string, error) {
	if o.Binary != "" {
		return o.Binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the xdplb executable: %w", err)
	}
	if strings.HasSuffix(exe, ".test") {
		return "", fmt.Errorf("the running executable %s is a test binary: set Options.Binary to an xdplb executable", exe)
	}
	return exe, nil
}

// Options says where a lab lives and which xdplb binary it runs.
type Options struct {
	// Prefix starts every namespace name. Default DefaultPrefix.
	Prefix string
	// RunDir holds configurations, sockets, logs and health files.
	// Default DefaultRunDir.
	RunDir string
	// PinRoot is the bpffs directory under which every program of the lab
	// is pinned. Default DefaultPinRoot.
	PinRoot string
	// Binary is the xdplb executable the directors and backends run.
	// Default: the running executable, unless it is a test binary.
	Binary string
	// Log receives the lab's own events. Default: discarded.
	Log *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.PinRoot == "" {
		o.PinRoot = DefaultPinRoot
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{o.RunDir, o.PinRoot} {
		if !filepath.IsAbs(d) || filepath.Clean(d) == "/" || strings.Count(filepath.Clean(d), "/") < 2 {
			return o, fmt.Errorf("lab directory %q: want an absolute path at least two levels deep", d)
		}
	}
	return o, nil
}

// Lab is a running lab.
type Lab struct {
	Topology  Topology
	Client    *labnet.Host
	Directors []*Director
	Backends  []*Backend
	opts      Options
	net       *labnet.Net
}

// Director is one director host and the `xdplb run` inside it.
type Director struct {
	Spec  DirectorSpec
	Host  *labnet.Host
	Paths DirectorPaths
	proc  *process
}

// Backend is one backend host and the `xdplb lab backend` inside it.
type Backend struct {
	Spec BackendSpec
	Host *labnet.Host
	// HealthFile turns the backend's health endpoint to failing while it
	// exists.
	HealthFile string
	Log        string
	proc       *process
}

// Up builds the lab of topology t and starts its processes, or removes
// what it built and returns why it could not. It does not wait for the
// directors to be ready: see WaitReady.
func Up(ctx context.Context, t Topology, o Options) (_ *Lab, err error) {
	if o, err = o.withDefaults(); err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if os.Getenv(childEnv) != "" {
		return nil, fmt.Errorf("this process was started by a lab (%s is set) and may not build one", childEnv)
	}
	if o.Binary, err = o.binary(); err != nil {
		return nil, err
	}
	if err := checkBinary(o.Binary); err != nil {
		return nil, err
	}
	if left, err := labnet.List(o.Prefix); err != nil {
		return nil, err
	} else if len(left) > 0 {
		return nil, fmt.Errorf("%w (namespaces %s): run `xdplb lab down` first", ErrExists, strings.Join(left, ", "))
	}
	l := &Lab{Topology: t, opts: o}
	defer func() {
		if err != nil {
			if _, derr := Down(o); derr != nil {
				err = errors.Join(err, fmt.Errorf("remove the partial lab: %w", derr))
			}
		}
	}()
	if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("lab run directory: %w", err)
	}
	if l.net, err = labnet.New(o.Prefix); err != nil {
		return nil, err
	}
	if err := l.addClient(); err != nil {
		return nil, err
	}
	for _, spec := range t.Backends {
		if err := l.addBackend(spec); err != nil {
			return nil, err
		}
	}
	for _, spec := range t.ActiveDirectors() {
		if err := l.addDirector(spec); err != nil {
			return nil, err
		}
	}
	for _, b := range l.Backends {
		if err := l.StartBackend(b); err != nil {
			return nil, err
		}
	}
	for _, d := range l.Directors {
		if err := l.StartDirector(d); err != nil {
			return nil, err
		}
	}
	o.Log.Info("lab up", "prefix", o.Prefix, "directors", len(l.Directors), "backends", len(l.Backends), "vrrp", t.VRRP.Enabled)
	return l, ctx.Err()
}

// checkBinary makes sure the binary the lab runs exists, so that a wrong
// path fails before anything is built.
func checkBinary(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("xdplb executable: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("xdplb executable %s is not an executable file", path)
	}
	return nil
}

// addClient creates the client: its address, the on-link route to the
// VIPs, and transmit checksum offload off, because the directors forward
// its frames from XDP, where a partial checksum is never completed.
func (l *Lab) addClient() error {
	addrs := []netip.Prefix{netip.PrefixFrom(l.Topology.Client, l.Topology.Subnet.Bits())}
	for _, a := range l.Topology.ClientAliases {
		addrs = append(addrs, netip.PrefixFrom(a, l.Topology.Subnet.Bits()))
	}
	h, err := l.net.Host("client", addrs...)
	if err != nil {
		return err
	}
	l.Client = h
	if err := h.AddRoute(l.Topology.VIPNet, labnet.HostLink, netip.Addr{}); err != nil {
		return err
	}
	return h.TxChecksumOff(labnet.HostLink)
}

// addBackend creates a backend host: the VIPs on lo, ARP for them left to
// the directors (arp_ignore 1 answers only for addresses of the asking
// link, arp_announce 2 never uses a VIP as the source of a request), and
// the decap program on eth0 for the tun service.
func (l *Lab) addBackend(spec BackendSpec) error {
	h, err := l.net.Host(spec.Name, netip.PrefixFrom(spec.Addr, l.Topology.Subnet.Bits()))
	if err != nil {
		return err
	}
	dir := filepath.Join(l.opts.RunDir, spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backend %s: %w", spec.Name, err)
	}
	b := &Backend{Spec: spec, Host: h, HealthFile: filepath.Join(dir, "unhealthy"), Log: filepath.Join(dir, "backend.log")}
	l.Backends = append(l.Backends, b)
	for _, v := range l.Topology.VIPs() {
		if err := h.AddAddr("lo", netip.PrefixFrom(v, 32)); err != nil {
			return err
		}
	}
	for _, s := range []string{"all", labnet.HostLink} {
		if err := h.Sysctl("net.ipv4.conf."+s+".arp_ignore", "1"); err != nil {
			return err
		}
		if err := h.Sysctl("net.ipv4.conf."+s+".arp_announce", "2"); err != nil {
			return err
		}
	}
	return h.Do(func() error {
		d, err := loader.AttachDecap(labnet.HostLink, loader.ModeNative, filepath.Join(l.opts.PinRoot, spec.Name), nil, l.opts.Log)
		if err != nil {
			return fmt.Errorf("backend %s: %w", spec.Name, err)
		}
		return d.Close()
	})
}

// addDirector creates a director host and writes its configuration. The
// switch port facing it gets a native XDP program that passes everything
// (the decap program with no address to accept): a veth drops the frames
// its peer sends with XDP_TX unless it runs a native XDP program itself.
// Without VRRP, the lab gives the director the VIPs.
func (l *Lab) addDirector(spec DirectorSpec) error {
	h, err := l.net.Host(spec.Name, netip.PrefixFrom(spec.Addr, l.Topology.Subnet.Bits()))
	if err != nil {
		return err
	}
	dir := filepath.Join(l.opts.RunDir, spec.Name)
	d := &Director{Spec: spec, Host: h, Paths: DirectorPaths{
		Config:   filepath.Join(dir, "xdplb.yaml"),
		Socket:   filepath.Join(dir, "xdplb.sock"),
		StateDir: filepath.Join(dir, "state"),
		PinRoot:  filepath.Join(l.opts.PinRoot, spec.Name),
		Log:      filepath.Join(dir, "daemon.log"),
	}}
	l.Directors = append(l.Directors, d)
	cfg, err := l.Topology.DirectorConfig(spec, d.Paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.Paths.StateDir, 0o700); err != nil {
		return fmt.Errorf("director %s: %w", spec.Name, err)
	}
	if err := os.WriteFile(d.Paths.Config, cfg, 0o600); err != nil {
		return fmt.Errorf("director %s: %w", spec.Name, err)
	}
	err = l.net.Switch.Do(func() error {
		// No address: every frame passes, so the warning is noise here.
		p, err := loader.AttachDecap(h.Port, loader.ModeNative, filepath.Join(l.opts.PinRoot, labnet.SwitchRole), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("XDP pass program on switch port %s: %w", h.Port, err)
		}
		return p.Close()
	})
	if err != nil {
		return err
	}
	if !l.Topology.VRRP.Enabled {
		for _, v := range l.Topology.VIPs() {
			if err := h.AddAddr(labnet.HostLink, netip.PrefixFrom(v, 32)); err != nil {
				return err
			}
		}
	}
	return nil
}

// StartBackend starts b's HTTP server, `xdplb lab backend`.
func (l *Lab) StartBackend(b *Backend) error {
	if b.proc != nil && !b.proc.exited() {
		return fmt.Errorf("backend %s is running", b.Spec.Name)
	}
	p, err := l.start(b.Host, b.Spec.Name+"/backend", b.Log,
		"lab", "backend", "--name", b.Spec.Name, "--listen", "0.0.0.0:80", "--health-file", b.HealthFile)
	if err != nil {
		return err
	}
	b.proc = p
	return nil
}

// StopBackend stops b's HTTP server gracefully: the listener closes at
// once, so new connections are refused.
func (l *Lab) StopBackend(b *Backend) error {
	if b.proc == nil {
		return fmt.Errorf("backend %s is not running", b.Spec.Name)
	}
	return b.proc.stop(5 * time.Second)
}

// StartDirector starts `xdplb run` on d.
func (l *Lab) StartDirector(d *Director) error {
	if d.proc != nil && !d.proc.exited() {
		return fmt.Errorf("director %s is running", d.Spec.Name)
	}
	p, err := l.start(d.Host, d.Spec.Name+"/daemon", d.Paths.Log, "run", "--config", d.Paths.Config)
	if err != nil {
		return err
	}
	d.proc = p
	return nil
}

// KillDaemon kills d's `xdplb run` with SIGKILL and waits for it to be
// gone. Its data plane stays attached and its VIPs stay on its link.
func (l *Lab) KillDaemon(d *Director) error {
	if d.proc == nil {
		return fmt.Errorf("director %s has no daemon", d.Spec.Name)
	}
	return d.proc.kill()
}

// Crash makes d disappear as a machine does when it dies: its daemon is
// killed and its link goes down, so it neither forwards nor answers ARP
// for the VIPs it still holds.
func (l *Lab) Crash(d *Director) error {
	err := l.KillDaemon(d)
	return errors.Join(err, d.Host.SetDown(labnet.HostLink))
}

// DaemonExited reports whether d's daemon has exited, and how.
func (d *Director) DaemonExited() (bool, error) {
	if d.proc == nil {
		return true, nil
	}
	if !d.proc.exited() {
		return false, nil
	}
	return true, d.proc.err
}

// Master returns the directors that hold every VIP on their link: with
// VRRP working, exactly one.
func (l *Lab) Master() ([]*Director, error) {
	var ms []*Director
	for _, d := range l.Directors {
		has, err := d.HoldsVIPs(l.Topology.VIPs())
		if err != nil {
			return nil, err
		}
		if has {
			ms = append(ms, d)
		}
	}
	return ms, nil
}

// HoldsVIPs reports whether d's link is up and holds every address of vips.
func (d *Director) HoldsVIPs(vips []netip.Addr) (bool, error) {
	link, err := d.Host.Link(labnet.HostLink)
	if err != nil {
		return false, err
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return false, nil
	}
	ps, err := d.Host.Addrs(labnet.HostLink)
	if err != nil {
		return false, err
	}
	for _, v := range vips {
		found := false
		for _, p := range ps {
			found = found || p.Addr() == v
		}
		if !found {
			return false, nil
		}
	}
	return true, nil
}

// Director returns the director called name, or nil.
func (l *Lab) Director(name string) *Director {
	for _, d := range l.Directors {
		if d.Spec.Name == name {
			return d
		}
	}
	return nil
}

// Backend returns the backend called name, or nil.
func (l *Lab) Backend(name string) *Backend {
	for _, b := range l.Backends {
		if b.Spec.Name == name {
			return b
		}
	}
	return nil
}

// Options returns the options the lab runs with, defaults filled in.
func (l *Lab) Options() Options { return l.opts }

// Close removes the lab (see Down).
func (l *Lab) Close() error {
	_, err := Down(l.opts)
	return err
}

// Removed is what Down removed.
type Removed struct {
	Namespaces []string
	Dirs       []string
}

// Down removes every trace of the lab that o describes, whether or not it
// is running and whoever built it: the processes inside its namespaces
// (SIGTERM, then SIGKILL), the namespaces and their links, its pinned
// programs and maps, and its run directory.
func Down(o Options) (Removed, error) {
	var r Removed
	o, err := o.withDefaults()
	if err != nil {
		return r, err
	}
	var errs []error
	r.Namespaces, err = labnet.Destroy(o.Prefix, 3*time.Second)
	errs = append(errs, err)
	for _, d := range []string{o.PinRoot, o.RunDir} {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
			continue
		}
		r.Dirs = append(r.Dirs, d)
	}
	return r, errors.Join(errs...)
}

// process is one program the lab started in a namespace.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// killed is set when the lab stops the process on purpose, so that
	// its exit is not reported as a failure.
	killed bool
}

// start runs the lab's binary with args in h, in a session of its own
// (Ctrl-C in the terminal reaches the lab, which stops it, not the
// process directly), with its output appended to logPath and its pid
// written next to it.
func (l *Lab) start(h *labnet.Host, name, logPath string, args ...string) (*process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(l.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if err := h.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	pidFile := strings.TrimSuffix(logPath, filepath.Ext(logPath)) + ".pid"
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		return p, fmt.Errorf("start %s: %w", name, err)
	}
	l.opts.Log.Info("process started", "name", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills.
func (p *process) stop(grace time.Duration) error {
	p.killed = true
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		return p.kill()
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() error {
	p.killed = true
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("kill %s: still running 5s after SIGKILL", p.name)
	}
}

// Describe returns lines that say what the lab holds and how to get into
// each namespace.
func (l *Lab) Describe() []string {
	t := l.Topology
	var out []string
	line := func(role, addr, enter, what string) {
		out = append(out, fmt.Sprintf("%-7s %-12s %-32s %s", role, addr, enter, what))
	}
	enter := func(h *labnet.Host) string { return "ip netns exec " + h.Name + " bash" }
	what := "HTTP client; VIPs routed on-link"
	if len(t.ClientAliases) > 0 {
		var as []string
		for _, a := range t.ClientAliases {
			as = append(as, a.String())
		}
		what += "; also " + strings.Join(as, ", ")
	}
	line("client", t.Client.String(), enter(l.Client), what)
	for _, d := range l.Directors {
		what := "xdplb run"
		if t.VRRP.Enabled {
			what += fmt.Sprintf(", VRRP priority %d", d.Spec.Priority)
		}
		line(d.Spec.Name, d.Spec.Addr.String(), enter(d.Host), what+"; config "+d.Paths.Config+", log "+d.Paths.Log)
	}
	for _, b := range l.Backends {
		line(b.Spec.Name, b.Spec.Addr.String(), enter(b.Host),
			fmt.Sprintf("weight %d; fail its health check: touch %s", b.Spec.Weight, b.HealthFile))
	}
	for _, s := range t.Services {
		out = append(out, fmt.Sprintf("service %s: %s (%s) over every backend", s.Name, s.URL("/"), s.Forwarding))
	}
	if !t.VRRP.Enabled {
		out = append(out, "VRRP off: one director, holding the VIPs itself")
	}
	return out
}

// AddBackend builds one more backend host and starts its server. The
// directors do not know it until it is added to Topology.Backends and
// Reload runs.
func (l *Lab) AddBackend(spec BackendSpec) (*Backend, error) {
	t := l.Topology
	t.Backends = append(append([]BackendSpec(nil), t.Backends...), spec)
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := l.addBackend(spec); err != nil {
		return nil, err
	}
	b := l.Backends[len(l.Backends)-1]
	if err := l.StartBackend(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Reload writes every director's configuration again from Topology and
// asks each running daemon to reload it through its API, which applies
// the difference. It returns once every daemon has accepted the file; the
// data plane follows at once, health checks of new backends later (see
// WaitBackend).
func (l *Lab) Reload(ctx context.Context) error {
	if err := l.Topology.Validate(); err != nil {
		return err
	}
	for _, d := range l.Directors {
		cfg, err := l.Topology.DirectorConfig(d.Spec, d.Paths)
		if err != nil {
			return err
		}
		// Written aside and renamed, so a daemon never reads half a file.
		tmp := d.Paths.Config + ".new"
		if err := os.WriteFile(tmp, cfg, 0o600); err != nil {
			return fmt.Errorf("director %s: %w", d.Spec.Name, err)
		}
		if err := os.Rename(tmp, d.Paths.Config); err != nil {
			return fmt.Errorf("director %s: %w", d.Spec.Name, err)
		}
		if d.proc == nil || d.proc.exited() {
			continue
		}
		if _, err := d.API().Reload(ctx); err != nil {
			return fmt.Errorf("director %s: reload: %w", d.Spec.Name, err)
		}
	}
	return nil
}

// API returns a client of d's daemon API.
func (d *Director) API() *api.Client { return api.NewClient(d.Paths.Socket) }
