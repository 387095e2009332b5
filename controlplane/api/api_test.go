package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nopDaemon answers every call with an empty success; fakes embed it and
// override what a test needs.
type nopDaemon struct{}

func (nopDaemon) Status(context.Context) (Status, error)              { return Status{}, nil }
func (nopDaemon) Reload(context.Context) (ReloadResult, error)        { return ReloadResult{}, nil }
func (nopDaemon) Drain(context.Context, BackendRef) (Result, error)   { return Result{}, nil }
func (nopDaemon) Undrain(context.Context, BackendRef) (Result, error) { return Result{}, nil }
func (nopDaemon) AddVIP(context.Context, VIPSpec) (Result, error)     { return Result{}, nil }
func (nopDaemon) DeleteVIP(context.Context, VIPRef) (Result, error)   { return Result{}, nil }
func (nopDaemon) AddBackend(context.Context, BackendSpec) (Result, error) {
	return Result{}, nil
}
func (nopDaemon) DeleteBackend(context.Context, BackendRef) (Result, error) {
	return Result{}, nil
}
func (nopDaemon) SetBackend(context.Context, BackendChange) (Result, error) {
	return Result{}, nil
}

// serve runs the API for d on a socket in a fresh directory and returns
// its path; everything stops when the test ends.
func serve(t *testing.T, d Daemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "xdplb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, d, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		ln.Close()
	})
	return path
}

func TestListenSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "xdplb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := fs.ModeSocket|0o600, fi.Mode(); want != got {
		t.Errorf("socket mode %v, want %v", got, want)
	}
	// Nothing but the socket is left in the directory: the temporary
	// name was renamed, not copied.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(entries))
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

func TestListenRefusals(t *testing.T) {
	dir := t.TempDir()

	// A live daemon on the path: refused, and its socket left alone.
	live := filepath.Join(dir, "live.sock")
	ln, err := Listen(live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(live); err == nil || !strings.Contains(err.Error(), "another xdplb daemon") {
		t.Errorf("Listen on a live socket: %v, want refusal naming another daemon", err)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("live socket removed: %v", err)
	}

	// A regular file: refused, not deleted.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file: %v, want refusal", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("regular file changed to %q", b)
	}

	// A stale socket (its daemon died): replaced.
	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	ln2, err := Listen(stale)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	ln2.Close()
}

type statusDaemon struct {
	nopDaemon
	st Status
}

func (d statusDaemon) Status(context.Context) (Status, error) { return d.st, nil }

func TestStatusRoundTrip(t *testing.T) {
	want := Status{
		Interface: "eth0", Mode: "native", Adopted: true,
		Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Services: []Service{{
			Name: "web", VIP: "198.18.1.100:80/tcp", Forwarding: "dr", Scheduler: "maglev", Origin: "config",
			HealthCheck: "http", ActiveBackends: 1, Dataplane: "forwarding",
			Backends: []Backend{{Address: "198.18.0.21", ID: 1, Weight: 1, State: "active", Health: "up", MAC: "02:00:00:00:00:21"}},
		}},
		FlowTable: FlowTable{Entries: 3, Capacity: 65536},
	}
	c := NewClient(serve(t, statusDaemon{st: want}))
	got, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", want) != fmt.Sprintf("%+v", got) {
		t.Errorf("Status:\n got %+v\nwant %+v", got, want)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

type drainDaemon struct {
	nopDaemon
	got []BackendRef
}

func (d *drainDaemon) Drain(_ context.Context, r BackendRef) (Result, error) {
	switch {
	case r.Service != "web":
		return Result{}, fmt.Errorf("service %q: %w", r.Service, ErrNotFound)
	case r.Backend == "bad":
		return Result{}, fmt.Errorf("backend %q is not an IPv4 address: %w", r.Backend, ErrInvalid)
	case r.Backend == "boom":
		return Result{}, errors.New("map write failed")
	}
	d.got = append(d.got, r)
	return Result{Message: "drained " + r.Backend}, nil
}

func (d *drainDaemon) Reload(context.Context) (ReloadResult, error) {
	return ReloadResult{}, fmt.Errorf("xdplb.yaml:3:9: director.interface: required: %w", ErrConfig)
}

func TestErrorsKeepTheirKind(t *testing.T) {
	d := &drainDaemon{}
	c := NewClient(serve(t, d))
	ctx := context.Background()

	res, err := c.Drain(ctx, BackendRef{Service: "web", Backend: "198.18.0.21"})
	if err != nil || res.Message != "drained 198.18.0.21" {
		t.Fatalf("Drain = %+v, %v", res, err)
	}
	if len(d.got) != 1 || d.got[0] != (BackendRef{Service: "web", Backend: "198.18.0.21"}) {
		t.Errorf("daemon received %+v", d.got)
	}

	tests := []struct {
		name    string
		call    func() error
		want    error
		message string
	}{
		{"not found", func() error { _, err := c.Drain(ctx, BackendRef{Service: "db", Backend: "1.2.3.4"}); return err },
			ErrNotFound, `service "db": not found`},
		{"invalid", func() error { _, err := c.Drain(ctx, BackendRef{Service: "web", Backend: "bad"}); return err },
			ErrInvalid, `backend "bad" is not an IPv4 address: invalid request`},
		{"internal", func() error { _, err := c.Drain(ctx, BackendRef{Service: "web", Backend: "boom"}); return err },
			nil, "map write failed"},
		{"config refused", func() error { _, err := c.Reload(ctx); return err },
			ErrConfig, "xdplb.yaml:3:9: director.interface: required: configuration refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			if want, got := tt.message, err.Error(); want != got {
				t.Errorf("message %q, want %q", got, want)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			for _, other := range []error{ErrNotFound, ErrExists, ErrInvalid, ErrConfig, ErrDenied} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error also matches %v", other)
				}
			}
		})
	}
}

// TestRejectsUnknownFields: a request the daemon would misread (a typo in
// a field name) is refused rather than half-applied.
func TestRejectsUnknownFields(t *testing.T) {
	path := serve(t, &drainDaemon{})
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"service":"web","backnd":"198.18.0.21"}`
	fmt.Fprintf(conn, "POST /v1/backend/drain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	buf := make([]byte, 4096)
	n, _ := readAll(conn, buf)
	resp := string(buf[:n])
	if !strings.HasPrefix(resp, "HTTP/1.1 400") || !strings.Contains(resp, `unknown field \"backnd\"`) {
		t.Errorf("response:\n%s\nwant 400 naming the unknown field", resp)
	}
}

func readAll(c net.Conn, buf []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestPeerOfAnotherUser: the handler serves only the user it was made
// for, whatever the socket's mode.
func TestPeerOfAnotherUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(statusDaemon{}, os.Geteuid()+4242, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); ln.Close() })

	_, err = NewClient(path).Status(context.Background())
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("Status as another user: %v, want ErrDenied", err)
	}
	if want := fmt.Sprintf("user %d may not use it", os.Geteuid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	for _, path := range []string{filepath.Join(dir, "missing.sock"), stale} {
		err := NewClient(path).Ping(context.Background())
		if !errors.Is(err, ErrNotRunning) {
			t.Errorf("Ping %s: %v, want ErrNotRunning", filepath.Base(path), err)
		}
	}
}
