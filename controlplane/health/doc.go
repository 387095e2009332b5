// Package health decides whether xdplb backends are fit to receive traffic:
// checkers probe one backend once (tcp, http, https, exec), and a Monitor
// runs them on an interval per backend and turns results into up/down
// transitions with HAProxy's rise/fall rules.
//
// # Checkers
//
// A Checker probes one Target and returns nil when it is healthy. Every
// deadline comes from the context: a check returns promptly when its context
// is done, and no goroutine or child process it started outlives it (only
// the standard library's dial cleanup, which sets a deadline, may run for
// microseconds more). A
// failure is a *Error carrying a stable Reason ("timeout", "refused",
// "status", ...) meant for metric labels; use errors.As or ReasonOf.
//
//   - TCP connects and closes.
//   - HTTP sends one GET over a fresh connection (no keep-alive, with TLS for
//     https), checks the status and optionally the first bytes of the body.
//   - Exec runs a command without a shell, its arguments Go templates filled
//     from the Target ({{.Address}}, {{.Port}}, {{.AddrPort}}, {{.Service}},
//     {{.VIP}}, {{.ServicePort}}); exit status 0 means healthy. The command runs in its
//     own process group, which is killed when the check times out and again
//     when the command exits, so helpers it left behind do not pile up.
//
// # Rise and fall
//
// A backend that is up goes down after Fall consecutive failed checks; a
// backend that is down comes up after Rise consecutive successful checks. A
// result of the other kind resets the count. Like HAProxy's default
// (init-state up), a backend starts up but with no margin: its first failure
// takes it down and its first success makes it fully up. This keeps a
// restarted director forwarding to the backends it already served instead
// of emptying every service until Rise checks have passed. InitFullyUp,
// InitDown and InitFullyDown choose HAProxy's other initial states.
//
// # Monitor
//
// Each target gets one goroutine that checks it on its own interval, so a
// slow or hanging backend never delays another. The first check of a target
// is spread over one interval by a hash of the monitor's seed and the
// target's ID, so that backends added together do not check in lockstep;
// later checks keep that phase. Checks of one target never overlap: if a
// check outlasts the interval, the next one starts when it returns.
//
// A target's initial state is not a transition: it is the configured
// Initial, visible through Status from the moment the target is added. After
// that, transitions are delivered, in order, to Options.OnTransition from a
// single goroutine that holds no lock, so the callback may call back into
// the Monitor (but not Stop). Options.Observe sees every completed check
// (duration, error, reason, resulting state), for metrics. Targets are
// added, updated and removed at runtime by ID (Set, Remove, or Apply for a
// whole reloaded configuration); an update keeps the target's state and
// counts. Remove and Stop cancel the checks in flight and return when the
// goroutines concerned have ended.
//
// Package healthtest has a fake Clock and a scripted Checker for testing
// code built on the Monitor without sleeping.
package health
