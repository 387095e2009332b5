package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxBody bounds how much of a response body HTTP reads.
const DefaultMaxBody = 64 << 10

// HTTPConfig describes an http or https check.
type HTTPConfig struct {
	// TLS makes it an https check.
	TLS bool
	// Path is the request target, with an optional query. Default "/".
	Path string
	// Host is the Host header (and the TLS server name when it is a name).
	// Default: the target's address, with its port unless it is the
	// scheme's default.
	Host string
	// ExpectStatus lists the statuses that mean healthy. Empty means any
	// 2xx or 3xx, as HAProxy's httpchk does. Redirects are not followed.
	ExpectStatus []int
	// BodyContains, when set, must occur in the first MaxBody bytes of the
	// body.
	BodyContains string
	// BodyRegexp, when set, must match the first MaxBody bytes of the body
	// (RE2 syntax).
	BodyRegexp string
	// MaxBody bounds the body bytes read for matching. Default DefaultMaxBody.
	MaxBody int64
	// InsecureSkipVerify accepts any certificate the backend presents.
	InsecureSkipVerify bool
	// ServerName is the TLS server name to send and verify. Default: Host
	// without its port when it is a name, else the target's address.
	ServerName string
	// RootCAs verifies backend certificates; nil means the system roots.
	RootCAs *x509.CertPool
	// UserAgent is sent as the User-Agent header. Default "xdplb-health".
	UserAgent string
	// Source, when valid, is the local address checks connect from.
	Source netip.Addr
}

// HTTP checks a backend with one GET request over a fresh connection per
// check (Connection: close, never reused), so every check also proves that
// the backend accepts new connections.
type HTTP struct {
	cfg     HTTPConfig
	uri     *url.URL
	bodyRE  *regexp.Regexp
	maxBody int64
}

// NewHTTP validates cfg and returns the checker.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	uri, err := url.ParseRequestURI(cfg.Path)
	if err != nil || uri.Scheme != "" || uri.Host != "" || !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("http check path %q: must be an absolute path such as /healthz", cfg.Path)
	}
	for _, s := range cfg.ExpectStatus {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf("http check expected status %d: must be within 100-599", s)
		}
	}
	if strings.ContainsAny(cfg.Host, " \t\r\n/") {
		return nil, fmt.Errorf("http check host %q: must be a host name with an optional port", cfg.Host)
	}
	c := &HTTP{cfg: cfg, uri: uri, maxBody: cfg.MaxBody}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	if cfg.BodyRegexp != "" {
		if c.bodyRE, err = regexp.Compile(cfg.BodyRegexp); err != nil {
			return nil, fmt.Errorf("http check body regexp: %w", err)
		}
	}
	if c.cfg.UserAgent == "" {
		c.cfg.UserAgent = "xdplb-health"
	}
	return c, nil
}

func (c *HTTP) host(t Target) string {
	if c.cfg.Host != "" {
		return c.cfg.Host
	}
	if (c.cfg.TLS && t.Port == 443) || (!c.cfg.TLS && t.Port == 80) {
		if t.Address.Is6() {
			return "[" + t.Address.String() + "]"
		}
		return t.Address.String()
	}
	return t.AddrPort().String()
}

func (c *HTTP) serverName(host string, t Target) string {
	if c.cfg.ServerName != "" {
		return c.cfg.ServerName
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return t.Address.String()
	}
	return host
}

// Check sends one GET to t and judges the response.
func (c *HTTP) Check(ctx context.Context, t Target) error {
	conn, release, err := dial(ctx, c.cfg.Source, t)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer release()

	host := c.host(t)
	var rw net.Conn = conn
	scheme := "http"
	if c.cfg.TLS {
		scheme = "https"
		tc := tls.Client(conn, &tls.Config{
			ServerName:         c.serverName(host, t),
			InsecureSkipVerify: c.cfg.InsecureSkipVerify,
			RootCAs:            c.cfg.RootCAs,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"http/1.1"},
		})
		// Handshake, not HandshakeContext: the connection's deadline
		// already follows ctx, and HandshakeContext would leave a goroutine
		// behind to close the connection on cancellation.
		if err := tc.Handshake(); err != nil {
			return failure(ctx, ReasonTLS, fmt.Errorf("tls handshake with %s: %w", t.AddrPort(), err))
		}
		rw = tc
	}

	u := *c.uri
	u.Scheme, u.Host = scheme, host
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"User-Agent": {c.cfg.UserAgent}, "Accept": {"*/*"}},
		Host:       host,
		Close:      true,
	}
	req = req.WithContext(ctx)
	bw := bufio.NewWriter(rw)
	if err := req.Write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return failure(ctx, ReasonReset, fmt.Errorf("send request to %s: %w", t.AddrPort(), err))
	}
	resp, err := http.ReadResponse(bufio.NewReader(rw), req)
	if err != nil {
		return failure(ctx, ReasonProtocol, fmt.Errorf("read response from %s: %w", t.AddrPort(), err))
	}
	// The body is not closed: closing it would read it to the end, which a
	// backend could make endless. Closing the connection discards it.

	if !c.statusOK(resp.StatusCode) {
		return &Error{Reason: ReasonStatus, Err: fmt.Errorf("GET %s from %s: status %d, want %s",
			c.uri.RequestURI(), t.AddrPort(), resp.StatusCode, c.wantStatus())}
	}
	if c.cfg.BodyContains == "" && c.bodyRE == nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
	if err != nil {
		return failure(ctx, ReasonReset, fmt.Errorf("read body from %s: %w", t.AddrPort(), err))
	}
	if c.cfg.BodyContains != "" && !bytes.Contains(body, []byte(c.cfg.BodyContains)) {
		return &Error{Reason: ReasonBody, Err: fmt.Errorf("GET %s from %s: body does not contain %q (read %d bytes)",
			c.uri.RequestURI(), t.AddrPort(), c.cfg.BodyContains, len(body))}
	}
	if c.bodyRE != nil && !c.bodyRE.Match(body) {
		return &Error{Reason: ReasonBody, Err: fmt.Errorf("GET %s from %s: body does not match %q (read %d bytes)",
			c.uri.RequestURI(), t.AddrPort(), c.bodyRE.String(), len(body))}
	}
	return nil
}

func (c *HTTP) statusOK(code int) bool {
	if len(c.cfg.ExpectStatus) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(c.cfg.ExpectStatus, code)
}

func (c *HTTP) wantStatus() string {
	if len(c.cfg.ExpectStatus) == 0 {
		return "2xx or 3xx"
	}
	s := make([]string, len(c.cfg.ExpectStatus))
	for i, v := range c.cfg.ExpectStatus {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, " or ")
}
