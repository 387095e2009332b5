package api

import (
	"errors"
	"net/http"
)

// Kinds of errors, as sent on the wire.
const (
	KindNotFound = "not_found"
	KindExists   = "exists"
	KindInvalid  = "invalid"
	KindConfig   = "config"
	KindInternal = "internal"
	KindDenied   = "denied"
)

// Sentinels for errors.Is. The daemon wraps them in the errors it returns
// so the server sends the right kind; the client's *Error matches them.
var (
	// ErrNotFound: no such service, VIP or backend.
	ErrNotFound = errors.New("not found")
	// ErrExists: the VIP or backend exists already.
	ErrExists = errors.New("already exists")
	// ErrInvalid: the request is malformed or asks for the impossible.
	ErrInvalid = errors.New("invalid request")
	// ErrConfig: the configuration file was refused; nothing changed.
	ErrConfig = errors.New("configuration refused")
	// ErrDenied: the caller is not allowed to use the API.
	ErrDenied = errors.New("permission denied")
	// ErrNotRunning: no daemon answers on the socket.
	ErrNotRunning = errors.New("xdplb daemon is not running")
)

// Error is an error the daemon returned.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Is matches e against the sentinel of its kind.
func (e *Error) Is(target error) bool {
	return target != nil && target == sentinel(e.Kind)
}

func sentinel(kind string) error {
	switch kind {
	case KindNotFound:
		return ErrNotFound
	case KindExists:
		return ErrExists
	case KindInvalid:
		return ErrInvalid
	case KindConfig:
		return ErrConfig
	case KindDenied:
		return ErrDenied
	}
	return nil
}

// kindOf classifies an error of the daemon, with its HTTP status.
func kindOf(err error) (string, int) {
	switch {
	case errors.Is(err, ErrNotFound):
		return KindNotFound, http.StatusNotFound
	case errors.Is(err, ErrExists):
		return KindExists, http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return KindInvalid, http.StatusBadRequest
	case errors.Is(err, ErrConfig):
		return KindConfig, http.StatusUnprocessableEntity
	case errors.Is(err, ErrDenied):
		return KindDenied, http.StatusForbidden
	}
	return KindInternal, http.StatusInternalServerError
}
