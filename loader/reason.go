package loader

import "strconv"

// Reason is why a packet left a program the way it did; it mirrors enum
// lb_reason in bpf/lb_types.h. Values are never renumbered, so counters
// keep their meaning across versions.
type Reason uint32

// Reasons, with the values of enum lb_reason.
const (
	ReasonPassNotIPv4     = Reason(lbLbReasonLB_REASON_PASS_NOT_IPV4)
	ReasonPassNotVIP      = Reason(lbLbReasonLB_REASON_PASS_NOT_VIP)
	ReasonPassFragment    = Reason(lbLbReasonLB_REASON_PASS_FRAGMENT)
	ReasonPassNotL4       = Reason(lbLbReasonLB_REASON_PASS_NOT_L4)
	ReasonPassMalformed   = Reason(lbLbReasonLB_REASON_PASS_MALFORMED)
	ReasonPassVLANStacked = Reason(lbLbReasonLB_REASON_PASS_VLAN_STACKED)
	ReasonTxDR            = Reason(lbLbReasonLB_REASON_TX_DR)
	ReasonTxTUN           = Reason(lbLbReasonLB_REASON_TX_TUN)
	ReasonTxICMPTooBig    = Reason(lbLbReasonLB_REASON_TX_ICMP_TOO_BIG)
	ReasonDropNoBackend   = Reason(lbLbReasonLB_REASON_DROP_NO_BACKEND)
	ReasonDropTooBig      = Reason(lbLbReasonLB_REASON_DROP_TOO_BIG)
	ReasonDropAdjust      = Reason(lbLbReasonLB_REASON_DROP_ADJUST)
	ReasonDropNoConfig    = Reason(lbLbReasonLB_REASON_DROP_NO_CONFIG)
	ReasonDecapOK         = Reason(lbLbReasonLB_REASON_DECAP_OK)
	ReasonPassNotIPIP     = Reason(lbLbReasonLB_REASON_PASS_NOT_IPIP)
	ReasonPassNotLocal    = Reason(lbLbReasonLB_REASON_PASS_NOT_LOCAL)
	ReasonPassOtherHost   = Reason(lbLbReasonLB_REASON_PASS_OTHER_HOST)

	// NumReasons is the number of reasons, LB_REASON_MAX.
	NumReasons = int(lbLbReasonLB_REASON_MAX)
)

// reasonNames are the enumerator names without LB_REASON_, lower-cased; a
// test checks them against the BTF of the compiled object.
var reasonNames = [...]string{
	ReasonPassNotIPv4:     "pass_not_ipv4",
	ReasonPassNotVIP:      "pass_not_vip",
	ReasonPassFragment:    "pass_fragment",
	ReasonPassNotL4:       "pass_not_l4",
	ReasonPassMalformed:   "pass_malformed",
	ReasonPassVLANStacked: "pass_vlan_stacked",
	ReasonTxDR:            "tx_dr",
	ReasonTxTUN:           "tx_tun",
	ReasonTxICMPTooBig:    "tx_icmp_too_big",
	ReasonDropNoBackend:   "drop_no_backend",
	ReasonDropTooBig:      "drop_too_big",
	ReasonDropAdjust:      "drop_adjust",
	ReasonDropNoConfig:    "drop_no_config",
	ReasonDecapOK:         "decap_ok",
	ReasonPassNotIPIP:     "pass_not_ipip",
	ReasonPassNotLocal:    "pass_not_local",
	ReasonPassOtherHost:   "pass_other_host",
}

// DecapOnly reports whether only the decap program counts r: the
// balancer's counter of it stays 0.
func (r Reason) DecapOnly() bool {
	return r == ReasonDecapOK || r == ReasonPassNotIPIP || r == ReasonPassNotLocal
}

// String returns the stable snake_case name, such as "pass_not_vip", or
// "reason_N" for a value this build does not know.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "reason_" + strconv.FormatUint(uint64(r), 10)
}

// Event is a flow-table event, counted besides the reason; it mirrors enum
// lb_event in bpf/lb_types.h.
type Event uint32

// Events, with the values of enum lb_event.
const (
	EventFlowHit          = Event(lbLbEventLB_EVENT_FLOW_HIT)
	EventFlowNew          = Event(lbLbEventLB_EVENT_FLOW_NEW)
	EventFlowRehash       = Event(lbLbEventLB_EVENT_FLOW_REHASH)
	EventFlowRSTSkipped   = Event(lbLbEventLB_EVENT_FLOW_RST_SKIPPED)
	EventFlowInsertFailed = Event(lbLbEventLB_EVENT_FLOW_INSERT_FAILED)
	EventFlowSYNReuse     = Event(lbLbEventLB_EVENT_FLOW_SYN_REUSE)
	EventFlowEvicted      = Event(lbLbEventLB_EVENT_FLOW_EVICTED)

	// NumEvents is the number of events, LB_EVENT_MAX.
	NumEvents = int(lbLbEventLB_EVENT_MAX)
)

var eventNames = [...]string{
	EventFlowHit:          "flow_hit",
	EventFlowNew:          "flow_new",
	EventFlowRehash:       "flow_rehash",
	EventFlowRSTSkipped:   "flow_rst_skipped",
	EventFlowInsertFailed: "flow_insert_failed",
	EventFlowSYNReuse:     "flow_syn_reuse",
	EventFlowEvicted:      "flow_evicted",
}

// String returns the stable snake_case name, such as "flow_hit", or
// "event_N" for a value this build does not know.
func (e Event) String() string {
	if int(e) < len(eventNames) && eventNames[e] != "" {
		return eventNames[e]
	}
	return "event_" + strconv.FormatUint(uint64(e), 10)
}
