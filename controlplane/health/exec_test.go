package health_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/controlplane/health"
	"github.com/xdplb/xdplb/internal/testenv"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	testenv.Command(t, "sh")
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func newExec(t *testing.T, cfg health.ExecConfig) *health.Exec {
	t.Helper()
	c, err := health.NewExec(cfg)
	if err != nil {
		t.Fatalf("NewExec(%+v): %v", cfg, err)
	}
	return c
}

// readPID waits for a script to write a pid into path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("pid file %s holds %q", path, b)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var galera = health.Target{
	Address:     netip.MustParseAddr("198.18.0.31"),
	Port:        9200,
	Service:     "mysql-write",
	VIP:         netip.MustParseAddr("198.18.1.101"),
	ServicePort: 3306,
}

func TestExecResults(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		args       []string
		wantReason health.Reason
		wantInErr  []string
	}{
		{"exit 0", "exit 0\n", nil, "", nil},
		{"exit 2 with a message", "echo 'wsrep_local_state=2 (Donor)' >&2\nexit 2\n", nil,
			health.ReasonExit, []string{"exit status 2", "wsrep_local_state=2 (Donor)"}},
		{"killed by a signal", "kill -TERM $$\n", nil, health.ReasonExit, []string{"signal: terminated"}},
		{"templates filled from the target", `
[ "$1" = 198.18.0.31 ] && [ "$2" = 9200 ] && [ "$3" = mysql-write ] &&
[ "$4" = 198.18.1.101 ] && [ "$5" = 3306 ] && [ "$6" = "198.18.0.31:9200" ] && [ "$7" = "a b" ] && exit 0
echo "args: $*"; exit 1
`, []string{"{{.Address}}", "{{.Port}}", "{{.Service}}", "{{.VIP}}", "{{.ServicePort}}", "{{.AddrPort}}", "a b"}, "", nil},
		{"no shell expansion of arguments", `[ "$1" = '$HOME;x' ] && exit 0; echo "got $1"; exit 1`, []string{"$HOME;x"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newExec(t, health.ExecConfig{Command: append([]string{script(t, tt.body)}, tt.args...)})
			err := check(t, c, galera)
			if want, got := tt.wantReason, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestExecEnv(t *testing.T) {
	c := newExec(t, health.ExecConfig{
		Command: []string{script(t, `[ "$XDPLB_CHECK_MODE" = deep ] && exit 0; exit 1`)},
		Env:     []string{"XDPLB_CHECK_MODE=deep"},
	})
	if err := check(t, c, galera); err != nil {
		t.Fatal(err)
	}
}

func TestExecOutputBounded(t *testing.T) {
	// 100 kB of output, the last line saying why.
	body := "i=0; while [ $i -lt 1000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; i=$((i+1)); done\necho 'node is read-only'\nexit 1\n"
	const max = 512
	c := newExec(t, health.ExecConfig{Command: []string{script(t, body)}, MaxOutput: max})
	err := check(t, c, galera)
	if want, got := health.ReasonExit, reasonOf(t, err); want != got {
		t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "node is read-only") {
		t.Errorf("error does not end with the last output line: %q", msg)
	}
	if len(msg) > max+200 {
		t.Errorf("error is %d bytes, want at most about %d", len(msg), max)
	}
}

func TestExecStartFailures(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{filepath.Join(dir, "missing")},
		{notExec},
		{"xdplb-no-such-program-on-path"},
	} {
		t.Run(filepath.Base(cmd[0]), func(t *testing.T) {
			err := check(t, newExec(t, health.ExecConfig{Command: cmd}), galera)
			if want, got := health.ReasonExec, reasonOf(t, err); want != got {
				t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
			}
		})
	}
}

func TestNewExecRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  health.ExecConfig
		want string
	}{
		{"no command", health.ExecConfig{}, "must name a program"},
		{"empty program", health.ExecConfig{Command: []string{" "}}, "must name a program"},
		{"unparsable template", health.ExecConfig{Command: []string{"/bin/check", "{{.Address"}}, "argument 1"},
		{"unknown field", health.ExecConfig{Command: []string{"/bin/check", "{{.Weight}}"}}, "Weight"},
		{"bad env", health.ExecConfig{Command: []string{"/bin/check"}, Env: []string{"NOEQUALS"}}, "KEY=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := health.NewExec(tt.cfg)
			if err == nil {
				t.Fatalf("NewExec(%+v) accepted it", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestExecTimeoutKillsProcessGroup runs a script that starts a grandchild
// and hangs. At the deadline the check must return at once and leave
// neither process running.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	testenv.Command(t, "sleep")
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	c := newExec(t, health.ExecConfig{Command: []string{script(t, `
sleep 300 &
echo $$ > "$1.leader"
echo $! > "$1.grandchild"
echo started
wait
`), pids}})

	const (
		timeout = 300 * time.Millisecond
		margin  = 100 * time.Millisecond
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx, galera)
	elapsed := time.Since(start)
	assertNoCheckGoroutines(t)
	if want, got := health.ReasonTimeout, reasonOf(t, err); want != got {
		t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
	}
	if !strings.Contains(err.Error(), "started") {
		t.Errorf("error %q does not carry the output", err)
	}
	if elapsed < timeout-early || elapsed > timeout+margin {
		t.Errorf("check took %v, want within [%v, %v]", elapsed, timeout-early, timeout+margin)
	}
	leader, grandchild := readPID(t, pids+".leader"), readPID(t, pids+".grandchild")
	waitGone(t, leader)
	waitGone(t, grandchild)
}

// TestExecKillsLeftovers runs a script that passes but leaves a background
// process holding its output: the check passes promptly and the leftover
// is killed.
func TestExecKillsLeftovers(t *testing.T) {
	testenv.Command(t, "sleep")
	pids := filepath.Join(t.TempDir(), "pids")
	c := newExec(t, health.ExecConfig{Command: []string{script(t, `
sleep 300 &
echo $! > "$1"
exit 0
`), pids}})
	start := time.Now()
	if err := check(t, c, galera); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("check took %v waiting for a leftover process", elapsed)
	}
	waitGone(t, readPID(t, pids))
}

func TestExecCanceledBeforeStart(t *testing.T) {
	ran := filepath.Join(t.TempDir(), "ran")
	c := newExec(t, health.ExecConfig{Command: []string{script(t, `touch "$1"`), ran}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Check(ctx, galera)
	if want, got := health.ReasonCanceled, reasonOf(t, err); want != got {
		t.Fatalf("reason: want %q, got %q (err %v)", want, got, err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the command ran although the check was canceled")
	}
}
