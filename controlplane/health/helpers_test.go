package health_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
)

// targetOf is the check target for a local listener address.
func targetOf(t *testing.T, addr net.Addr) health.Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		t.Fatalf("parse listener address %s: %v", addr, err)
	}
	return health.Target{Address: ap.Addr(), Port: ap.Port(), Service: "web"}
}

// closedPort returns a loopback target on which nothing listens.
func closedPort(t *testing.T) health.Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := targetOf(t, ln.Addr())
	ln.Close()
	return tg
}

// silentServer accepts connections and reads from them but never writes:
// a backend that hangs. accepted receives one value per connection.
func silentServer(t *testing.T) (health.Target, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return targetOf(t, ln.Addr()), accepted
}

// rawServer answers every connection with reply and closes it.
func rawServer(t *testing.T, reply string) health.Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 4096))
			io.WriteString(c, reply)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return targetOf(t, ln.Addr())
}

// selfSignedCert makes a self-signed certificate for 127.0.0.1 and
// backend.test.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "backend.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"backend.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Goroutines are recognised by a marker in their stack: those of package
// health (the Monitor's, and any a check starts itself) and those of the
// standard library's machinery that checks use.
var (
	ownMarkers    = []string{"xdplb/controlplane/health."}
	stdlibMarkers = []string{
		"os/exec.",
		"net.(*netFD).connect",
		"crypto/tls.(*Conn).handshakeContext",
		"context.(*afterFuncCtx)",
		"net/http.(*persistConn)",
		"net/http.(*Transport)",
	}
)

// exitGrace bounds how long a goroutine may still show up once the call
// that ended it has returned. A goroutine's last act is to signal that it
// is done, so it can be seen on its closing line a moment later; and net
// arms a context.AfterFunc that only sets a deadline and is not waited
// for. The checks in these tests hang for a minute, so a goroutine leaked
// with its check could not pass within this bound.
const exitGrace = 100 * time.Millisecond

// early is how much sooner than its deadline a timed-out check may return:
// the runtime's poller can wake a little ahead of a socket deadline, and
// the test starts its stopwatch just after the context's. The bound that
// matters is the upper one; the lower one shows the check did wait.
const early = 10 * time.Millisecond

// goroutines lists the goroutines whose stack holds one of markers,
// leaving out the test's own HTTP servers.
func goroutines(markers []string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*conn).serve") {
			continue
		}
		for _, m := range markers {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// checkGoroutines lists the goroutines of package health and of the
// machinery checks use.
func checkGoroutines() []string {
	return goroutines(append(append([]string(nil), ownMarkers...), stdlibMarkers...))
}

// assertNoCheckGoroutines fails t if a goroutine of package health or of
// the check machinery still runs exitGrace after the call.
func assertNoCheckGoroutines(t *testing.T) {
	t.Helper()
	assertGone(t, checkGoroutines)
}

// assertGone fails t unless list returns nothing within exitGrace.
func assertGone(t *testing.T, list func() []string) {
	t.Helper()
	deadline := time.Now().Add(exitGrace)
	for {
		gs := list()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines still run %v after their check or monitor ended:\n%s", len(gs), exitGrace, strings.Join(gs, "\n\n"))
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// reasonOf fails t unless err is a *health.Error and returns its reason.
func reasonOf(t *testing.T, err error) health.Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	var he *health.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not a *health.Error", err, err)
	}
	return he.Reason
}

// processGone reports whether pid has exited. A zombie counts as gone: it
// runs nothing, and reaping orphans is the job of the init process.
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] == 'Z' || s[i+2] == 'X'
}

// waitGone waits up to a second for pid to exit.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Errorf("process %d still running", pid)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// timeoutCtx is a context that ends after d, canceled at cleanup.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
