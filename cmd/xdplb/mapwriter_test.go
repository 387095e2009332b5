package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/controlplane/api"
)

// changeRecorder is a daemon that records the changes it is asked for,
// as JSON, and answers each with a sentence naming it.
type changeRecorder struct {
	fakeDaemon
	got []string
	err error
}

func (r *changeRecorder) record(call string, req any) (api.Result, error) {
	b, _ := json.Marshal(req)
	r.got = append(r.got, call+" "+string(b))
	if r.err != nil {
		return api.Result{}, r.err
	}
	return api.Result{Message: "daemon did " + call}, nil
}

func (r *changeRecorder) AddVIP(_ context.Context, s api.VIPSpec) (api.Result, error) {
	return r.record("AddVIP", s)
}
func (r *changeRecorder) DeleteVIP(_ context.Context, v api.VIPRef) (api.Result, error) {
	return r.record("DeleteVIP", v)
}
func (r *changeRecorder) AddBackend(_ context.Context, s api.BackendSpec) (api.Result, error) {
	return r.record("AddBackend", s)
}
func (r *changeRecorder) DeleteBackend(_ context.Context, b api.BackendRef) (api.Result, error) {
	return r.record("DeleteBackend", b)
}
func (r *changeRecorder) SetBackend(_ context.Context, c api.BackendChange) (api.Result, error) {
	return r.record("SetBackend", c)
}

// TestMapCommandsGoThroughDaemon checks that while a daemon answers, the
// commands that change the maps send it exactly what was given (omitted
// flags stay omitted, so the daemon keeps its values) and print its
// answer; the pin root is empty, so a command that wrote the maps itself
// would fail.
func TestMapCommandsGoThroughDaemon(t *testing.T) {
	const vip = "198.18.1.100:80/tcp"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"vip add", []string{"vip", "add", vip, "--forwarding", "dr"},
			`AddVIP {"vip":"198.18.1.100:80/tcp","forwarding":"dr","scheduler":"maglev"}`},
		{"vip add source-hash", []string{"vip", "add", "198.18.1.101/udp", "--forwarding", "tun", "--scheduler", "source-hash", "--persistence-granularity", "255.255.255.0"},
			`AddVIP {"vip":"198.18.1.101/udp","forwarding":"tun","scheduler":"source-hash","persistence_prefix":24}`},
		{"vip add with a health check, braces added", []string{"vip", "add", vip, "--forwarding", "dr", "--health-check", "type: http, path: /healthz, interval: 1s"},
			`AddVIP {"vip":"198.18.1.100:80/tcp","forwarding":"dr","scheduler":"maglev","health_check":"{type: http, path: /healthz, interval: 1s}"}`},
		{"vip del", []string{"vip", "del", vip},
			`DeleteVIP {"vip":"198.18.1.100:80/tcp"}`},
		{"backend add resolving the MAC", []string{"backend", "add", vip, "198.18.0.21"},
			`AddBackend {"service":"198.18.1.100:80/tcp","backend":"198.18.0.21"}`},
		{"backend add with every flag", []string{"backend", "add", vip, "198.18.0.22", "--mac", "02:00:5E:00:00:22", "--weight", "3", "--state", "draining"},
			`AddBackend {"service":"198.18.1.100:80/tcp","backend":"198.18.0.22","weight":3,"state":"draining","mac":"02:00:5e:00:00:22"}`},
		{"backend set state", []string{"backend", "set", vip, "198.18.0.21", "--state", "draining"},
			`SetBackend {"service":"198.18.1.100:80/tcp","backend":"198.18.0.21","state":"draining"}`},
		{"backend set weight and MAC", []string{"backend", "set", vip, "198.18.0.21", "--weight", "0", "--mac", "02:00:5e:00:00:99"},
			`SetBackend {"service":"198.18.1.100:80/tcp","backend":"198.18.0.21","weight":0,"mac":"02:00:5e:00:00:99"}`},
		{"backend del", []string{"backend", "del", vip, "198.18.0.21"},
			`DeleteBackend {"service":"198.18.1.100:80/tcp","backend":"198.18.0.21"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &changeRecorder{}
			sock := serveFake(t, d)
			out, errOut, err := run(t, allCaps, append(tt.args, "--socket", sock, "--verbose")...)
			if err != nil {
				t.Fatalf("xdplb %s: %v", strings.Join(tt.args, " "), err)
			}
			if want, got := []string{tt.want}, d.got; len(got) != 1 || got[0] != want[0] {
				t.Errorf("daemon asked:\nwant %q\ngot  %q", want, got)
			}
			call, _, _ := strings.Cut(tt.want, " ")
			if want := "daemon did " + call + "\n"; out != want {
				t.Errorf("output %q, want the daemon's answer %q", out, want)
			}
			if want := "via daemon at " + sock; !strings.Contains(errOut, want) {
				t.Errorf("--verbose said %q, want %q", errOut, want)
			}
		})
	}

	// The daemon's refusal is the command's error, exit status 1.
	d := &changeRecorder{err: fmt.Errorf("VIP 198.18.1.100:80/tcp exists already (service web): %w", api.ErrExists)}
	sock := serveFake(t, d)
	_, _, err := run(t, allCaps, "vip", "add", vip, "--forwarding", "dr", "--socket", sock)
	if !errors.Is(err, api.ErrExists) || !strings.Contains(err.Error(), "exists already (service web)") || exitCode(err) != 1 {
		t.Errorf("refused change: %v (exit %d), want the daemon's error and exit 1", err, exitCode(err))
	}

	// A bad health check is refused before the daemon is asked, saying
	// what is wrong where.
	d = &changeRecorder{}
	sock = serveFake(t, d)
	_, _, err = run(t, allCaps, "vip", "add", vip, "--forwarding", "dr", "--health-check", "type: tcp, timeout: 3s, interval: 1s", "--socket", sock)
	if len(d.got) != 0 || err == nil || !strings.Contains(err.Error(), "health check:1:22: health_check.timeout: 3s is not shorter than interval (1s)") || exitCode(err) != 2 {
		t.Errorf("bad --health-check: daemon asked %q, error %v (exit %d); want a usage error naming the field", d.got, err, exitCode(err))
	}

	// A daemon that runs another interface than --iface is not asked.
	d = &changeRecorder{}
	d.status.Interface = "eth0"
	sock = serveFake(t, d)
	_, errOut, err := run(t, allCaps, "--iface", "eth9", "--verbose", "backend", "del", vip, "198.18.0.21", "--socket", sock)
	if len(d.got) != 0 || err == nil || !strings.Contains(err.Error(), "not attached to eth9") {
		t.Errorf("--iface eth9 with a daemon on eth0: daemon asked %q, error %v; want the maps of eth9 written directly", d.got, err)
	}
	if want := "writing maps directly: the daemon on " + sock + " runs eth0, not eth9"; !strings.Contains(errOut, want) {
		t.Errorf("--verbose said %q, want %q", errOut, want)
	}
}

// TestMapWriteFailsFastWhenLocked holds the lock of an attachment's maps,
// as a daemon does while it runs, with no daemon on --socket: the command
// must give up after lockWait, naming the holder and what to do.
func TestMapWriteFailsFastWhenLocked(t *testing.T) {
	pinRoot := t.TempDir()
	dir := filepath.Join(pinRoot, "eth0")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := controlplane.Lock(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	missing := filepath.Join(t.TempDir(), "none.sock")

	start := time.Now()
	_, errOut, err := run(t, allCaps, "--pin-root", pinRoot, "--verbose", "backend", "set", "198.18.1.100:80/tcp", "198.18.0.21", "--state", "down", "--socket", missing)
	took := time.Since(start)
	if took < lockWait || took > lockWait+2*time.Second {
		t.Errorf("gave up after %v, want %v", took, lockWait)
	}
	if !errors.Is(err, errLocked) || exitCode(err) != 1 {
		t.Fatalf("error %v (exit %d), want errLocked and exit 1", err, exitCode(err))
	}
	for _, want := range []string{
		fmt.Sprintf("held by pid %d (", os.Getpid()),
		dir,
		"no daemon answers on " + missing,
		"give its director.api_socket with --socket",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if want := "writing maps directly: no daemon answers on " + missing; !strings.Contains(errOut, want) {
		t.Errorf("--verbose said %q, want %q", errOut, want)
	}
}
