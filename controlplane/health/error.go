package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Reason is a stable, low-cardinality word saying why a check failed. It is
// meant for metric labels and is never renamed.
type Reason string

// Reasons a check fails.
const (
	// ReasonTimeout: the check did not finish before its deadline.
	ReasonTimeout Reason = "timeout"
	// ReasonCanceled: the check was abandoned (its context was canceled).
	ReasonCanceled Reason = "canceled"
	// ReasonRefused: the backend refused the connection (TCP RST to SYN).
	ReasonRefused Reason = "refused"
	// ReasonUnreachable: no route to the backend (host or network unreachable).
	ReasonUnreachable Reason = "unreachable"
	// ReasonReset: the backend reset or closed the connection mid-check.
	ReasonReset Reason = "reset"
	// ReasonConnect: connecting failed for another reason.
	ReasonConnect Reason = "connect"
	// ReasonTLS: the TLS handshake or certificate verification failed.
	ReasonTLS Reason = "tls"
	// ReasonProtocol: the backend's reply is not valid HTTP.
	ReasonProtocol Reason = "protocol"
	// ReasonStatus: the HTTP status is not one of those expected.
	ReasonStatus Reason = "status"
	// ReasonBody: the HTTP body does not match.
	ReasonBody Reason = "body"
	// ReasonExit: the command exited non-zero or was killed by a signal.
	ReasonExit Reason = "exit"
	// ReasonExec: the command could not be prepared or started.
	ReasonExec Reason = "exec"
	// ReasonOther: an error that is not a *Error.
	ReasonOther Reason = "error"
)

// Error is a failed check. Err says what happened; Reason classifies it.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason of err: "" for nil, the Reason of a wrapped
// *Error, ReasonTimeout or ReasonCanceled for a bare context error (from a
// Checker written elsewhere), and ReasonOther for anything else.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var he *Error
	switch {
	case errors.As(err, &he):
		return he.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	}
	return ReasonOther
}

// failure wraps err in an *Error whose reason is found from the context and
// the error chain; fallback is used when nothing more precise applies.
func failure(ctx context.Context, fallback Reason, err error) error {
	return &Error{Reason: classify(ctx, fallback, err), Err: err}
}

func classify(ctx context.Context, fallback Reason, err error) Reason {
	// The context decides first: once it is done, the I/O error is only a
	// consequence (a deadline in the past, a closed connection).
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return ReasonTimeout
	case context.Canceled:
		return ReasonCanceled
	}
	var (
		ne         net.Error
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		verifyErr  *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		invalidErr x509.CertificateInvalidError
		hostErr    x509.HostnameError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ReasonUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ReasonReset
	case errors.As(err, &recordErr), errors.As(err, &alertErr), errors.As(err, &verifyErr),
		errors.As(err, &unknownCA), errors.As(err, &invalidErr), errors.As(err, &hostErr):
		return ReasonTLS
	}
	return fallback
}
