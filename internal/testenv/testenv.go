package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv names the variable that turns a privileged skip into a failure.
// CI sets it, so a test that needs root and BPF can never pass by skipping.
const RequireEnv = "XDPLB_REQUIRE_PRIVILEGED"

// Privileged skips t when the process is not root, or fails it instead when
// XDPLB_REQUIRE_PRIVILEGED=1.
func Privileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("test needs root (CAP_BPF, CAP_NET_ADMIN) and %s=1 forbids skipping", RequireEnv)
	}
	t.Skip("test needs root (CAP_BPF, CAP_NET_ADMIN); run as root to include it")
}

// Command skips t when the executable name is not on PATH, or fails it
// when XDPLB_REQUIRE_PRIVILEGED=1, where `make deps` must have installed it.
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("test needs %s on PATH (make deps installs it): %v", name, err)
	}
	t.Skipf("test needs %s on PATH (make deps installs it)", name)
	return ""
}
