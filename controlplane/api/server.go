package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Daemon is what the API serves. Its methods return errors wrapping
// ErrNotFound, ErrExists, ErrInvalid or ErrConfig where they apply; any
// other error is reported as internal.
type Daemon interface {
	Status(ctx context.Context) (Status, error)
	Reload(ctx context.Context) (ReloadResult, error)
	Drain(ctx context.Context, r BackendRef) (Result, error)
	Undrain(ctx context.Context, r BackendRef) (Result, error)
	AddVIP(ctx context.Context, s VIPSpec) (Result, error)
	DeleteVIP(ctx context.Context, r VIPRef) (Result, error)
	AddBackend(ctx context.Context, s BackendSpec) (Result, error)
	DeleteBackend(ctx context.Context, r BackendRef) (Result, error)
	SetBackend(ctx context.Context, c BackendChange) (Result, error)
}

// maxBody bounds a request body; every request is a few hundred bytes.
const maxBody = 1 << 20

// Handler returns the API's HTTP handler for d. Requests from a peer
// whose user is not uid are refused with 403, and so are requests whose
// peer is unknown (not over a unix socket served by Serve).
func Handler(d Daemon, uid int, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		reply(w, log, r, struct{}{}, nil)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := d.Status(r.Context())
		reply(w, log, r, st, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res, err := d.Reload(r.Context())
		reply(w, log, r, res, err)
	})
	mux.HandleFunc("POST /v1/backend/drain", call(log, d.Drain))
	mux.HandleFunc("POST /v1/backend/undrain", call(log, d.Undrain))
	mux.HandleFunc("POST /v1/vip/add", call(log, d.AddVIP))
	mux.HandleFunc("POST /v1/vip/del", call(log, d.DeleteVIP))
	mux.HandleFunc("POST /v1/backend/add", call(log, d.AddBackend))
	mux.HandleFunc("POST /v1/backend/del", call(log, d.DeleteBackend))
	mux.HandleFunc("POST /v1/backend/set", call(log, d.SetBackend))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, ok := r.Context().Value(credKey{}).(*unix.Ucred)
		if !ok || int(cred.Uid) != uid {
			who := "an unknown peer"
			if ok {
				who = fmt.Sprintf("user %d", cred.Uid)
			}
			log.Warn("API request refused", "peer", who, "path", r.URL.Path)
			writeError(w, log, fmt.Errorf("the xdplb API is for root only; %s may not use it: %w", who, ErrDenied))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// call adapts a change method to an HTTP handler: JSON request in, JSON
// Result out.
func call[Req any](log *slog.Logger, fn func(context.Context, Req) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, log, fmt.Errorf("decode request: %v: %w", err, ErrInvalid))
			return
		}
		res, err := fn(r.Context(), req)
		reply(w, log, r, res, err)
	}
}

func reply(w http.ResponseWriter, log *slog.Logger, r *http.Request, v any, err error) {
	if err != nil {
		writeError(w, log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Debug("API reply not sent", "path", r.URL.Path, "err", err)
	}
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	kind, code := kindOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(Error{Kind: kind, Message: err.Error()}); err != nil {
		log.Debug("API error not sent", "err", err)
	}
}

type credKey struct{}

// peerCred returns the credentials of the process at the other end of a
// unix socket.
func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// Serve serves the API for d on ln until ctx is done, then stops
// accepting, lets requests in flight finish (for up to five seconds) and
// returns. Only processes running as the daemon's own user are served.
func Serve(ctx context.Context, ln net.Listener, d Daemon, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := newServer(d, os.Geteuid(), log)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	if err != nil {
		return fmt.Errorf("stop API: %w", err)
	}
	return nil
}

// newServer returns the HTTP server of the API, which serves peers
// running as uid.
func newServer(d Daemon, uid int, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           Handler(d, uid, log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cred, err := peerCred(c)
			if err != nil {
				return ctx
			}
			return context.WithValue(ctx, credKey{}, cred)
		},
	}
}

// Listener is the API's unix socket. Close removes the socket file.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Listen creates the unix socket at path, with mode 0600, creating its
// directory (mode 0755) if needed. The socket is bound under a temporary
// name, restricted to its owner and then renamed to path, so it is never
// reachable with wider permissions. A stale socket left by a daemon that
// died is replaced; a socket another daemon still answers on is an error,
// and so is a path that is not a socket.
func Listen(path string) (*Listener, error) {
	if path == "" {
		return nil, errors.New("listen: no API socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen on %s: the path exists and is not a socket; remove it or choose another api_socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another xdplb daemon is serving there; stop it first, or give this one another api_socket", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+hex.EncodeToString(rnd[:]))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(tmp, &st); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &Listener{UnixListener: ln, path: path, ino: st.Ino}, nil
}

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file, unless another
// process has replaced it meanwhile.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	var st syscall.Stat_t
	if syscall.Lstat(l.path, &st) == nil && st.Ino == l.ino {
		os.Remove(l.path)
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// drain reads and discards what is left of a body, so the connection can
// be reused.
func drain(r io.Reader) { io.Copy(io.Discard, io.LimitReader(r, maxBody)) }
