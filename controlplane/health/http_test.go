package health_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
)

// backend is a local HTTP server whose health endpoint the test controls.
type backend struct {
	srv    *httptest.Server
	status atomic.Int32
	body   atomic.Value // string

	mu       sync.Mutex
	hosts    []string
	uris     []string
	closes   []bool
	newConns int
}

func newBackend(t *testing.T, useTLS bool, cert tls.Certificate) *backend {
	t.Helper()
	b := &backend{}
	b.status.Store(http.StatusOK)
	b.body.Store("OK")
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hosts = append(b.hosts, r.Host)
		b.uris = append(b.uris, r.RequestURI)
		b.closes = append(b.closes, r.Close)
		b.mu.Unlock()
		w.WriteHeader(int(b.status.Load()))
		io.WriteString(w, b.body.Load().(string))
	}))
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.mu.Lock()
			b.newConns++
			b.mu.Unlock()
		}
	}
	if useTLS {
		b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		b.srv.StartTLS()
	} else {
		b.srv.Start()
	}
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) target(t *testing.T) health.Target {
	t.Helper()
	return targetOf(t, b.srv.Listener.Addr())
}

func newHTTP(t *testing.T, cfg health.HTTPConfig) *health.HTTP {
	t.Helper()
	c, err := health.NewHTTP(cfg)
	if err != nil {
		t.Fatalf("NewHTTP(%+v): %v", cfg, err)
	}
	return c
}

func check(t *testing.T, c health.Checker, tg health.Target) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.Check(ctx, tg)
	assertNoCheckGoroutines(t)
	return err
}

func TestHTTPFlippingStatus(t *testing.T) {
	b := newBackend(t, false, tls.Certificate{})
	c := newHTTP(t, health.HTTPConfig{Path: "/healthz", ExpectStatus: []int{200}})
	tg := b.target(t)
	for i, step := range []struct {
		status int
		want   health.Reason
	}{
		{200, ""},
		{503, health.ReasonStatus},
		{200, ""},
		{204, health.ReasonStatus}, // healthy by HTTP but not the status asked for
		{500, health.ReasonStatus},
		{200, ""},
	} {
		b.status.Store(int32(step.status))
		err := check(t, c, tg)
		if want, got := step.want, reasonOf(t, err); want != got {
			t.Fatalf("check %d with status %d: want reason %q, got %q (err %v)", i, step.status, want, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("status %d", step.status)) {
			t.Errorf("error %q does not name the status", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Every check is a fresh connection that asks to be closed.
	if want, got := 6, b.newConns; want != got {
		t.Errorf("connections: want %d (one per check), got %d", want, got)
	}
	for i, closed := range b.closes {
		if !closed {
			t.Errorf("request %d did not carry Connection: close", i)
		}
	}
	for i, uri := range b.uris {
		if want, got := "/healthz", uri; want != got {
			t.Errorf("request %d URI: want %q, got %q", i, want, got)
		}
	}
}

func TestHTTPResponses(t *testing.T) {
	tests := []struct {
		name       string
		cfg        health.HTTPConfig
		status     int
		body       string
		wantReason health.Reason
	}{
		{"default accepts 2xx", health.HTTPConfig{}, 204, "", ""},
		{"default accepts 3xx without following", health.HTTPConfig{}, 302, "", ""},
		{"default refuses 4xx", health.HTTPConfig{}, 404, "", health.ReasonStatus},
		{"default refuses 5xx", health.HTTPConfig{}, 503, "", health.ReasonStatus},
		{"one of several statuses", health.HTTPConfig{ExpectStatus: []int{200, 429}}, 429, "", ""},
		{"body contains", health.HTTPConfig{BodyContains: "READY"}, 200, "state=READY\n", ""},
		{"body lacks", health.HTTPConfig{BodyContains: "READY"}, 200, "state=STARTING\n", health.ReasonBody},
		{"body regexp matches", health.HTTPConfig{BodyRegexp: `^wsrep_local_state=4$`}, 200, "wsrep_local_state=4", ""},
		{"body regexp mismatch", health.HTTPConfig{BodyRegexp: `^wsrep_local_state=4$`}, 200, "wsrep_local_state=2", health.ReasonBody},
		{"status is judged before body", health.HTTPConfig{BodyContains: "READY"}, 503, "READY", health.ReasonStatus},
		{"match beyond the read bound", health.HTTPConfig{BodyContains: "READY"}, 200, strings.Repeat("x", health.DefaultMaxBody) + "READY", health.ReasonBody},
		{"match within a raised bound", health.HTTPConfig{BodyContains: "READY", MaxBody: 2 * health.DefaultMaxBody}, 200, strings.Repeat("x", health.DefaultMaxBody) + "READY", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, false, tls.Certificate{})
			b.status.Store(int32(tt.status))
			b.body.Store(tt.body)
			err := check(t, newHTTP(t, tt.cfg), b.target(t))
			if want, got := tt.wantReason, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	tests := []struct {
		name     string
		cfg      health.HTTPConfig
		wantHost func(tg health.Target) string
		wantURI  string
	}{
		{"defaults", health.HTTPConfig{}, func(tg health.Target) string { return tg.AddrPort().String() }, "/"},
		{"host and query", health.HTTPConfig{Host: "shop.example", Path: "/health?deep=1"},
			func(health.Target) string { return "shop.example" }, "/health?deep=1"},
		{"host with port", health.HTTPConfig{Host: "shop.example:8080", Path: "/ping"},
			func(health.Target) string { return "shop.example:8080" }, "/ping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, false, tls.Certificate{})
			tg := b.target(t)
			if err := check(t, newHTTP(t, tt.cfg), tg); err != nil {
				t.Fatal(err)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if want, got := tt.wantHost(tg), b.hosts[0]; want != got {
				t.Errorf("Host: want %q, got %q", want, got)
			}
			if want, got := tt.wantURI, b.uris[0]; want != got {
				t.Errorf("request URI: want %q, got %q", want, got)
			}
		})
	}
}

func TestHTTPConnectionFailures(t *testing.T) {
	tests := []struct {
		name       string
		target     func(t *testing.T) health.Target
		cfg        health.HTTPConfig
		wantReason health.Reason
	}{
		{"closed port", closedPort, health.HTTPConfig{}, health.ReasonRefused},
		{"closed port https", closedPort, health.HTTPConfig{TLS: true}, health.ReasonRefused},
		{"closed without reply", func(t *testing.T) health.Target { return rawServer(t, "") }, health.HTTPConfig{}, health.ReasonReset},
		{"not HTTP", func(t *testing.T) health.Target { return rawServer(t, "SSH-2.0-OpenSSH_9.6\r\n") }, health.HTTPConfig{}, health.ReasonProtocol},
		{"truncated body", func(t *testing.T) health.Target {
			return rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nREA")
		}, health.HTTPConfig{BodyContains: "READY"}, health.ReasonReset},
		{"https to a plain server", func(t *testing.T) health.Target {
			return newBackend(t, false, tls.Certificate{}).target(t)
		}, health.HTTPConfig{TLS: true, InsecureSkipVerify: true}, health.ReasonTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newHTTP(t, tt.cfg)
			err := check(t, c, tt.target(t))
			if want, got := tt.wantReason, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	cert, pool := selfSignedCert(t)
	b := newBackend(t, true, cert)
	tests := []struct {
		name       string
		cfg        health.HTTPConfig
		wantReason health.Reason
	}{
		{"skip verify accepts a self-signed cert", health.HTTPConfig{InsecureSkipVerify: true}, ""},
		{"verify refuses an unknown CA", health.HTTPConfig{}, health.ReasonTLS},
		{"verify with the CA, by IP", health.HTTPConfig{RootCAs: pool}, ""},
		{"verify with the CA, by name", health.HTTPConfig{RootCAs: pool, Host: "backend.test"}, ""},
		{"verify refuses another name", health.HTTPConfig{RootCAs: pool, Host: "other.test"}, health.ReasonTLS},
		{"server name apart from Host", health.HTTPConfig{RootCAs: pool, Host: "other.test", ServerName: "backend.test"}, ""},
		{"skip verify still checks the status", health.HTTPConfig{InsecureSkipVerify: true, ExpectStatus: []int{204}}, health.ReasonStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.TLS = true
			err := check(t, newHTTP(t, tt.cfg), b.target(t))
			if want, got := tt.wantReason, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
		})
	}
}

// TestHTTPTimeout checks that a hung backend costs the check its timeout
// and little more, whatever phase it hangs in.
func TestHTTPTimeout(t *testing.T) {
	const (
		timeout = 200 * time.Millisecond
		margin  = 100 * time.Millisecond
	)
	stalledBody := func(t *testing.T) health.Target {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "REA")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		return targetOf(t, srv.Listener.Addr())
	}
	silent := func(t *testing.T) health.Target { tg, _ := silentServer(t); return tg }
	tests := []struct {
		name   string
		target func(t *testing.T) health.Target
		cfg    health.HTTPConfig
	}{
		{"no response", silent, health.HTTPConfig{}},
		{"no TLS handshake", silent, health.HTTPConfig{TLS: true, InsecureSkipVerify: true}},
		{"body stalls", stalledBody, health.HTTPConfig{BodyContains: "READY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := tt.target(t)
			c := newHTTP(t, tt.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			err := c.Check(ctx, tg)
			elapsed := time.Since(start)
			assertNoCheckGoroutines(t)
			if want, got := health.ReasonTimeout, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
			if elapsed < timeout-early || elapsed > timeout+margin {
				t.Errorf("check took %v, want within [%v, %v]", elapsed, timeout-early, timeout+margin)
			}
		})
	}
}

// TestHTTPEndlessBody checks that the body is read only up to its bound: a
// backend streaming forever fails on the body, long before the timeout.
func TestHTTPEndlessBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 4096))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newHTTP(t, health.HTTPConfig{BodyContains: "READY"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx, targetOf(t, srv.Listener.Addr()))
	if want, got := health.ReasonBody, reasonOf(t, err); want != got {
		t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("check took %v reading an endless body", elapsed)
	}
	if !strings.Contains(err.Error(), "read 65536 bytes") {
		t.Errorf("error %q does not say how much was read", err)
	}
}

func TestNewHTTPRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  health.HTTPConfig
		want string
	}{
		{"relative path", health.HTTPConfig{Path: "healthz"}, "absolute path"},
		{"full URL as path", health.HTTPConfig{Path: "http://a/b"}, "absolute path"},
		{"status out of range", health.HTTPConfig{ExpectStatus: []int{200, 99}}, "100-599"},
		{"bad regexp", health.HTTPConfig{BodyRegexp: "(unclosed"}, "regexp"},
		{"host with a path", health.HTTPConfig{Host: "a.example/x"}, "host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := health.NewHTTP(tt.cfg)
			if err == nil {
				t.Fatalf("NewHTTP(%+v) accepted it", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestHTTPIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	hosts := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	tg := targetOf(t, ln.Addr())
	if err := check(t, newHTTP(t, health.HTTPConfig{}), tg); err != nil {
		t.Fatal(err)
	}
	if want, got := "[::1]:"+fmt.Sprint(tg.Port), <-hosts; want != got {
		t.Errorf("Host: want %q, got %q", want, got)
	}
}
