// Package health decides whether xdplb backends are fit to receive traffic:
// checkers probe one backend once (tcp, http, https, exec), and a Monitor
// runs them on an interval per backend and turns results into up/down
// transitions with HAProxy's rise/fall rules.
//
// # Checkers
//
// A Checker probes one Target and returns nil when it is healthy. Every
// deadline comes from the context: a check returns promptly when its context
// is done, and no goroutine or child process it started outlives it. A
// failure is a *Error carrying a stable Reason ("timeout", "refused",
// "status", ...) meant for metric labels; use errors.As or ReasonOf.
//
//   - TCP connects and closes.
//   - HTTP sends one GET over a fresh connection (no keep-alive, with TLS for
//     https), checks the status and optionally the first bytes of the body.
//   - Exec runs a command without a shell, its arguments Go templates filled
//     from the Target ({{.Address}}, {{.Port}}, {{.Service}}, {{.VIP}},
//     {{.ServicePort}}); exit status 0 means healthy. The command runs in its
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
// Transitions are delivered, in order, to Options.OnTransition from a single
// goroutine that holds no lock, so the callback may call back into the
// Monitor (but not Stop). Options.Observe sees every completed check, for
// metrics. Targets are added, updated and removed at runtime by ID; an update
// keeps the target's state and counts. Stop cancels the checks in flight and
// returns when every goroutine of the Monitor has ended.
package health
