package lab

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String(), rec.Header().Get(BackendHeader)
}

func TestBackendServerAnswers(t *testing.T) {
	health := filepath.Join(t.TempDir(), "unhealthy")
	s := &BackendServer{Name: "be7", HealthFile: health}
	tests := []struct {
		name     string
		path     string
		failing  bool
		wantCode int
		wantBody string
	}{
		{"root", "/", false, 200, "be7\n"},
		{"any path", "/some/page?q=1", false, 200, "be7\n"},
		{"healthy", HealthPath, false, 200, "ok\n"},
		{"failing", HealthPath, true, 503, "failing: " + health + " exists\n"},
		{"root while failing", "/", true, 200, "be7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(health)
			if tt.failing {
				if err := os.WriteFile(health, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, body, hdr := get(t, s, tt.path)
			if code != tt.wantCode || body != tt.wantBody || hdr != "be7" {
				t.Errorf("GET %s = %d %q (%s %q), want %d %q (be7)", tt.path, code, body, BackendHeader, hdr, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestBackendServerServeAndStop(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&BackendServer{Name: "be1"}).Serve(ctx, ln) }()

	c := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + ln.Addr().String()
	name, err := Ask(ctx, c, url+"/")
	if err != nil || name != "be1" {
		t.Fatalf("Ask = %q, %v; want be1", name, err)
	}
	if err := Healthy(ctx, c, url+HealthPath); err != nil {
		t.Errorf("Healthy = %v, want nil", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	// Stopped: new connections are refused.
	if conn, err := net.DialTimeout("tcp4", ln.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Errorf("connected to a stopped backend")
	}
}

func TestAskRefusesMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(BackendHeader, "be2")
		io.WriteString(w, "be1\n")
	}))
	defer srv.Close()
	_, err := Ask(context.Background(), srv.Client(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), `body names "be1"`) {
		t.Errorf("Ask = %v, want a mismatch error", err)
	}
}
