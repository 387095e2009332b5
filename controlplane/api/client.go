package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"syscall"
)

// Client talks to the daemon's API over its unix socket. Its methods are
// safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon listening on socket (the
// configuration's director.api_socket).
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Ping returns nil when a daemon answers on the socket, and an error
// wrapping ErrNotRunning when none does (no socket, or a stale one). The
// CLI uses it to choose between the API and writing the maps itself.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/ping", nil, &struct{}{})
}

// Status returns the daemon's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Reload makes the daemon re-read its configuration file and apply the
// difference. A refused file gives an error wrapping ErrConfig whose
// message lists every problem as file:line:column: field: message.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, &res)
	return res, err
}

// Drain drains a backend: its established flows continue, it gets no new
// ones. The decision is persisted and survives restarts and reloads.
func (c *Client) Drain(ctx context.Context, r BackendRef) (Result, error) {
	return c.change(ctx, "/v1/backend/drain", r)
}

// Undrain undoes Drain (and an operator's `backend set --state down`).
func (c *Client) Undrain(ctx context.Context, r BackendRef) (Result, error) {
	return c.change(ctx, "/v1/backend/undrain", r)
}

// AddVIP adds a VIP as a persisted runtime change.
func (c *Client) AddVIP(ctx context.Context, s VIPSpec) (Result, error) {
	return c.change(ctx, "/v1/vip/add", s)
}

// DeleteVIP deletes a VIP (a runtime one, or a configured one until the
// next reload that changes it), as a persisted runtime change.
func (c *Client) DeleteVIP(ctx context.Context, r VIPRef) (Result, error) {
	return c.change(ctx, "/v1/vip/del", r)
}

// AddBackend adds a backend to a VIP as a persisted runtime change.
func (c *Client) AddBackend(ctx context.Context, s BackendSpec) (Result, error) {
	return c.change(ctx, "/v1/backend/add", s)
}

// DeleteBackend deletes a backend of a VIP as a persisted runtime change.
func (c *Client) DeleteBackend(ctx context.Context, r BackendRef) (Result, error) {
	return c.change(ctx, "/v1/backend/del", r)
}

// SetBackend changes a backend's weight, state or MAC as a persisted
// runtime change.
func (c *Client) SetBackend(ctx context.Context, ch BackendChange) (Result, error) {
	return c.change(ctx, "/v1/backend/set", ch)
}

func (c *Client) change(ctx context.Context, path string, req any) (Result, error) {
	var res Result
	err := c.do(ctx, http.MethodPost, path, req, &res)
	return res, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body *bytes.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", path, err)
		}
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://xdplb"+path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	defer drain(resp.Body)
	dec := json.NewDecoder(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e Error
		if err := dec.Decode(&e); err != nil || e.Message == "" {
			return fmt.Errorf("%s: daemon answered %s", path, resp.Status)
		}
		return &e
	}
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

// dialError explains why the daemon could not be reached.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing answers on %s (start it with 'xdplb run --config FILE')", ErrNotRunning, c.socket)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: cannot open %s: run as root", ErrDenied, c.socket)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("reach daemon on %s: %w", c.socket, err)
}
