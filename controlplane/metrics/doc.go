// Package metrics exports the xdplb daemon's state to Prometheus: data-plane
// counters (per VIP, per backend, per reason), backend health and states,
// health-check durations and failures, flow-table use, BPF memory, reload
// results and build information.
//
// Data-plane figures are read when Prometheus scrapes, from a Source the
// daemon implements, so nothing is counted twice and a scrape always shows
// the maps as they are. Health checks and reloads are events: the daemon
// reports them through ObserveCheck, ObserveTransition and ObserveReload.
//
// Names follow the Prometheus conventions (base units, _total for counters,
// one metric per meaning with labels for the rest) and pass promlint.
// Label values are the ones an operator types: service names, VIPs in the
// CLI's form (198.18.1.100:80/tcp), backend addresses, the data plane's
// reason names (pass_not_vip, drop_no_backend).
package metrics
