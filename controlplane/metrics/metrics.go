package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "xdplb"

// BuildInfo describes the running binary, for xdplb_build_info.
type BuildInfo struct {
	Version   string
	Revision  string
	GoVersion string
}

// Snapshot is the daemon's state at one scrape.
type Snapshot struct {
	Services []Service
	// Reasons counts every packet the balancer handled by the reason it
	// gave (the data plane's names: "pass_not_vip", "tx_dr",
	// "drop_no_backend"...), summed over CPUs.
	Reasons map[string]uint64
	// FlowEvents counts flow-table events by name ("flow_new",
	// "flow_hit", "flow_rehash"...).
	FlowEvents map[string]uint64
	// FlowEntries is the number of entries in the flow table, FlowCapacity
	// its size.
	FlowEntries, FlowCapacity uint64
	// Memlock is the kernel memory each BPF map holds, by map name.
	Memlock map[string]uint64
	// VRRP is the daemon's VRRP instances; VRRPLinks counts, per
	// interface, the messages no instance claimed.
	VRRP      []VRRPInstance
	VRRPLinks []VRRPLink
}

// VRRPInstance is one VRRP instance.
type VRRPInstance struct {
	Name      string
	Interface string
	VRID      uint8
	// State is one of "init", "backup", "master", "fault".
	State string
	// Priority is the priority the instance advertises, after trackers.
	Priority uint8
	// AdvertsSent and AdvertsReceived count advertisements, priority 0
	// included; Transitions counts state changes.
	AdvertsSent, AdvertsReceived, Transitions uint64
	// Drops counts the received advertisements dropped, by reason name.
	Drops map[string]uint64
}

// VRRPLink counts the VRRP messages an interface received that no
// instance claimed (malformed, unknown VRID), by reason name.
type VRRPLink struct {
	Interface string
	Drops     map[string]uint64
}

// Service is one virtual service.
type Service struct {
	Name string
	VIP  string // 198.18.1.100:80/tcp
	// ActiveBackends counts the backends that take new flows; 0 means the
	// data plane drops the VIP's new flows (drop_no_backend).
	ActiveBackends int
	// Packets and Bytes are what the data plane forwarded for the VIP.
	Packets, Bytes uint64
	Backends       []Backend
}

// Backend is one backend of a Service.
type Backend struct {
	Address string
	// State is the data plane's state: "active", "draining" or "down".
	State string
	// Healthy is the health checks' verdict (true for a service that is
	// not checked).
	Healthy bool
	Weight  uint32
	// Packets and Bytes are what the data plane forwarded to it.
	Packets, Bytes uint64
}

// Source produces a Snapshot when Prometheus scrapes.
type Source interface {
	Snapshot() (Snapshot, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func() (Snapshot, error)

// Snapshot calls f.
func (f SourceFunc) Snapshot() (Snapshot, error) { return f() }

// backendStates are the values of the state label of
// xdplb_backend_state: every state is exported, 1 for the current one,
// so that a state change never leaves a stale series behind.
var backendStates = []string{"active", "draining", "down"}

// vrrpStates are the values of the state label of xdplb_vrrp_state,
// exported the same way.
var vrrpStates = []string{"init", "backup", "master", "fault"}

// Metrics is the daemon's Prometheus registry.
type Metrics struct {
	reg *prometheus.Registry

	checkDuration *prometheus.HistogramVec
	checkFailures *prometheus.CounterVec
	decisionToMap prometheus.Histogram
	transitions   *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	lastReloadOK  prometheus.Gauge
	lastReloadAt  prometheus.Gauge
}

// New returns the registry for a daemon whose data-plane state src reports.
// It includes the Go runtime and process collectors
// (process_resident_memory_bytes and friends).
func New(src Source, info BuildInfo) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "health_check_duration_seconds",
			Help:      "Time health checks took, failed ones included.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "type"}),
		checkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "health_check_failures_total",
			Help:      "Failed health checks, by reason (timeout, refused, status, exit...).",
		}, []string{"service", "reason"}),
		decisionToMap: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "health_decision_to_map_seconds",
			Help:      "Time from the health check that decided to take a backend out to its slot written in the BPF maps.",
			Buckets:   []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "health_transitions_total",
			Help:      "Backend health changes decided by rise/fall, by the state entered (up or down).",
		}, []string{"service", "to"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "config_reloads_total",
			Help:      "Configuration reloads, by result (success or failure); a refused file is a failure and changes nothing.",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_successful",
			Help:      "1 if the last reload was applied, 0 if it was refused.",
		}),
		lastReloadAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_success_timestamp_seconds",
			Help:      "When the configuration in force was loaded (start-up or last successful reload), as a Unix time.",
		}),
	}
	m.lastReloadOK.Set(1)
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels describe the running xdplb binary.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(
		m.checkDuration, m.checkFailures, m.decisionToMap, m.transitions, m.reloads, m.lastReloadOK, m.lastReloadAt, build,
		newDataplaneCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry, for tests and for serving it elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveCheck records one completed health check of a backend of service,
// of the given type (tcp, http, https, exec). failure is the reason of a
// failed check ("timeout", "refused"...) and empty for a passed one.
func (m *Metrics) ObserveCheck(service, checkType string, d time.Duration, failure string) {
	m.checkDuration.WithLabelValues(service, checkType).Observe(d.Seconds())
	if failure != "" {
		m.checkFailures.WithLabelValues(service, failure).Inc()
	}
}

// ObserveDecisionToMap records how long after a check decided to take a
// backend out its slot was written.
func (m *Metrics) ObserveDecisionToMap(d time.Duration) {
	m.decisionToMap.Observe(d.Seconds())
}

// ObserveTransition records a backend of service going up or down.
func (m *Metrics) ObserveTransition(service string, up bool) {
	to := "down"
	if up {
		to = "up"
	}
	m.transitions.WithLabelValues(service, to).Inc()
}

// ObserveReload records a reload: applied (ok) or refused. at is when the
// configuration now in force was loaded; it is also called once at
// start-up with ok set.
func (m *Metrics) ObserveReload(ok bool, at time.Time) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadAt.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

// ObserveStart records the configuration loaded at start-up, without
// counting it as a reload.
func (m *Metrics) ObserveStart(at time.Time) {
	m.lastReloadOK.Set(1)
	m.lastReloadAt.Set(float64(at.UnixNano()) / 1e9)
}

// dataplaneCollector turns a Snapshot into metrics at every scrape.
type dataplaneCollector struct {
	src Source

	vipPackets, vipBytes         *prometheus.Desc
	backendPackets, backendBytes *prometheus.Desc
	backendUp, backendState      *prometheus.Desc
	backendWeight                *prometheus.Desc
	activeBackends               *prometheus.Desc
	packets, flowEvents          *prometheus.Desc
	flowEntries, flowCapacity    *prometheus.Desc
	memlock                      *prometheus.Desc
	vrrpState, vrrpPriority      *prometheus.Desc
	vrrpTransitions, vrrpDrops   *prometheus.Desc
	vrrpSent, vrrpReceived       *prometheus.Desc
}

func newDataplaneCollector(src Source) *dataplaneCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	svc := []string{"service", "vip"}
	be := []string{"service", "vip", "backend"}
	vi := []string{"instance", "interface", "vrid"}
	return &dataplaneCollector{
		src:            src,
		vipPackets:     d("vip_packets_total", "Packets the data plane forwarded for a VIP (DR or TUN).", svc...),
		vipBytes:       d("vip_bytes_total", "Bytes of the frames the data plane forwarded for a VIP, as received.", svc...),
		backendPackets: d("backend_packets_total", "Packets the data plane forwarded to a backend.", be...),
		backendBytes:   d("backend_bytes_total", "Bytes of the frames the data plane forwarded to a backend, as received.", be...),
		backendUp:      d("backend_up", "Health-check verdict of a backend: 1 up, 0 down (1 for an unchecked service).", be...),
		backendState: d("backend_state", "Data-plane state of a backend: 1 for the current one of active, draining and down.",
			append(be, "state")...),
		backendWeight: d("backend_weight", "Maglev weight of a backend.", be...),
		activeBackends: d("service_active_backends",
			"Backends taking new flows; at 0 the data plane drops the VIP's packets (reason drop_no_backend).", svc...),
		packets: d("packets_total",
			"Packets the balancer program handled, by action (pass, tx, drop) and reason, summed over CPUs.", "action", "reason"),
		flowEvents:   d("flow_events_total", "Flow-table events: new flows, hits, re-hashes away from a down backend, SYNs on a known 5-tuple, skipped RSTs, evictions, failed inserts.", "event"),
		flowEntries:  d("flow_table_entries", "Entries in the flow table (established flows pinned to a backend)."),
		flowCapacity: d("flow_table_capacity_entries", "Size of the flow table; when full, a new flow replaces the least recently used of the 8 it may take."),
		memlock:      d("bpf_map_memory_bytes", "Kernel memory held by each BPF map, Maglev tables included.", "map"),
		vrrpState: d("vrrp_state", "State of a VRRP instance: 1 for the current one of init, backup, master and fault.",
			append(vi, "state")...),
		vrrpPriority:    d("vrrp_priority", "Priority a VRRP instance advertises, after its trackers' weights.", vi...),
		vrrpTransitions: d("vrrp_transitions_total", "State changes of a VRRP instance.", vi...),
		vrrpSent:        d("vrrp_adverts_sent_total", "VRRP advertisements an instance sent, priority 0 included.", vi...),
		vrrpReceived:    d("vrrp_adverts_received_total", "Valid VRRP advertisements an instance received, priority 0 included.", vi...),
		vrrpDrops: d("vrrp_drops_total",
			"Received VRRP messages dropped, by reason; instance is empty for those no instance claimed (malformed, unknown VRID).",
			"interface", "instance", "reason"),
	}
}

func (c *dataplaneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.vipPackets, c.vipBytes, c.backendPackets, c.backendBytes, c.backendUp, c.backendState,
		c.backendWeight, c.activeBackends, c.packets, c.flowEvents, c.flowEntries, c.flowCapacity, c.memlock,
		c.vrrpState, c.vrrpPriority, c.vrrpTransitions, c.vrrpSent, c.vrrpReceived, c.vrrpDrops,
	} {
		ch <- d
	}
}

func (c *dataplaneCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.src.Snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.packets, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, svc := range s.Services {
		counter(c.vipPackets, svc.Packets, svc.Name, svc.VIP)
		counter(c.vipBytes, svc.Bytes, svc.Name, svc.VIP)
		gauge(c.activeBackends, float64(svc.ActiveBackends), svc.Name, svc.VIP)
		for _, b := range svc.Backends {
			counter(c.backendPackets, b.Packets, svc.Name, svc.VIP, b.Address)
			counter(c.backendBytes, b.Bytes, svc.Name, svc.VIP, b.Address)
			gauge(c.backendUp, boolValue(b.Healthy), svc.Name, svc.VIP, b.Address)
			gauge(c.backendWeight, float64(b.Weight), svc.Name, svc.VIP, b.Address)
			for _, st := range backendStates {
				gauge(c.backendState, boolValue(b.State == st), svc.Name, svc.VIP, b.Address, st)
			}
		}
	}
	for reason, n := range s.Reasons {
		counter(c.packets, n, actionOf(reason), reason)
	}
	for ev, n := range s.FlowEvents {
		counter(c.flowEvents, n, ev)
	}
	gauge(c.flowEntries, float64(s.FlowEntries))
	gauge(c.flowCapacity, float64(s.FlowCapacity))
	for name, n := range s.Memlock {
		gauge(c.memlock, float64(n), name)
	}
	for _, in := range s.VRRP {
		vi := []string{in.Name, in.Interface, strconv.Itoa(int(in.VRID))}
		for _, st := range vrrpStates {
			gauge(c.vrrpState, boolValue(in.State == st), append(vi, st)...)
		}
		gauge(c.vrrpPriority, float64(in.Priority), vi...)
		counter(c.vrrpTransitions, in.Transitions, vi...)
		counter(c.vrrpSent, in.AdvertsSent, vi...)
		counter(c.vrrpReceived, in.AdvertsReceived, vi...)
		for reason, n := range in.Drops {
			counter(c.vrrpDrops, n, in.Interface, in.Name, reason)
		}
	}
	for _, l := range s.VRRPLinks {
		for reason, n := range l.Drops {
			counter(c.vrrpDrops, n, l.Interface, "", reason)
		}
	}
}

// actionOf names what the program did with a packet of the given reason,
// from the reason's prefix: "pass", "tx", "drop" (and "decap" for the
// decap program's success).
func actionOf(reason string) string {
	if a, _, ok := strings.Cut(reason, "_"); ok {
		return a
	}
	return "other"
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
