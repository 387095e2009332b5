package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// HealthPath is where a lab backend serves its health endpoint.
const HealthPath = "/healthz"

// BackendHeader carries the answering backend's name in every response.
const BackendHeader = "X-Lab-Backend"

// BackendServer is the HTTP server a lab backend runs. Every path answers
// 200 with the backend's name as the body; HealthPath answers 200 "ok",
// or 503 while HealthFile exists, so a test or a user flips a backend's
// health with touch and rm.
type BackendServer struct {
	Name       string
	HealthFile string
	Log        *slog.Logger
}

// ServeHTTP answers one request.
func (s *BackendServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(BackendHeader, s.Name)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path == HealthPath {
		if s.HealthFile != "" {
			if _, err := os.Stat(s.HealthFile); err == nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "failing: %s exists\n", s.HealthFile)
				return
			}
		}
		fmt.Fprintln(w, "ok")
		return
	}
	fmt.Fprintln(w, s.Name)
}

// Serve answers on ln until ctx ends, then shuts down gracefully: requests
// in progress finish, idle keep-alive connections are closed.
func (s *BackendServer) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("backend serving", "backend", s.Name, "listen", ln.Addr().String(), "health_file", s.HealthFile)
	select {
	case err := <-errc:
		return fmt.Errorf("serve backend %s: %w", s.Name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	log.Info("backend stopped", "backend", s.Name)
	if err != nil {
		return fmt.Errorf("stop backend %s: %w", s.Name, err)
	}
	return nil
}
