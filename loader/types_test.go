package loader

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseVIP(t *testing.T) {
	tests := []struct {
		in      string
		want    VIP
		wantStr string // String() of the result; "" means in
		wantErr string
	}{
		{in: "198.18.1.100:80/tcp", want: VIP{netip.MustParseAddr("198.18.1.100"), 80, TCP}},
		{in: "198.18.1.100/udp", want: VIP{netip.MustParseAddr("198.18.1.100"), 0, UDP}},
		{in: "198.18.1.100:0/udp", want: VIP{netip.MustParseAddr("198.18.1.100"), 0, UDP}, wantStr: "198.18.1.100/udp"},
		{in: "198.18.1.100:443/TCP", want: VIP{netip.MustParseAddr("198.18.1.100"), 443, TCP}, wantStr: "198.18.1.100:443/tcp"},
		{in: "[::ffff:198.18.1.1]:53/udp", want: VIP{netip.MustParseAddr("198.18.1.1"), 53, UDP}, wantStr: "198.18.1.1:53/udp"},
		{in: "[2001:db8::1]:80/tcp", want: VIP{netip.MustParseAddr("2001:db8::1"), 80, TCP}},
		{in: "2001:db8::1/tcp", want: VIP{netip.MustParseAddr("2001:db8::1"), 0, TCP}},
		{in: "198.18.1.100:80", wantErr: "missing protocol"},
		{in: "198.18.1.100:80/sctp", wantErr: "want tcp or udp"},
		{in: "198.18.1.100:99999/tcp", wantErr: "want ADDR[:PORT]/PROTO"},
		{in: "host:80/tcp", wantErr: "want ADDR[:PORT]/PROTO"},
		{in: "/tcp", wantErr: "want ADDR[:PORT]/PROTO"},
		{in: "", wantErr: "missing protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVIP(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVIP(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVIP(%q): %v", tt.in, err)
			}
			if tt.want != got {
				t.Errorf("ParseVIP(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			wantStr := tt.wantStr
			if wantStr == "" {
				wantStr = tt.in
			}
			if s := got.String(); wantStr != s {
				t.Errorf("String() = %q, want %q", s, wantStr)
			}
			if again, err := ParseVIP(got.String()); err != nil || again != got {
				t.Errorf("ParseVIP(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		name  string
		str   string
		parse func(string) (string, error)
	}{
		{"tcp", TCP.String(), func(s string) (string, error) { p, err := ParseProto(s); return p.String(), err }},
		{"udp", UDP.String(), func(s string) (string, error) { p, err := ParseProto(s); return p.String(), err }},
		{"dr", ForwardDR.String(), func(s string) (string, error) { f, err := ParseForwarding(s); return f.String(), err }},
		{"tun", ForwardTUN.String(), func(s string) (string, error) { f, err := ParseForwarding(s); return f.String(), err }},
		{"unused", StateUnused.String(), func(s string) (string, error) { b, err := ParseBackendState(s); return b.String(), err }},
		{"active", StateActive.String(), func(s string) (string, error) { b, err := ParseBackendState(s); return b.String(), err }},
		{"draining", StateDraining.String(), func(s string) (string, error) { b, err := ParseBackendState(s); return b.String(), err }},
		{"down", StateDown.String(), func(s string) (string, error) { b, err := ParseBackendState(s); return b.String(), err }},
		{"auto", ModeAuto.String(), func(s string) (string, error) { m, err := ParseMode(s); return m.String(), err }},
		{"native", ModeNative.String(), func(s string) (string, error) { m, err := ParseMode(s); return m.String(), err }},
		{"generic", ModeGeneric.String(), func(s string) (string, error) { m, err := ParseMode(s); return m.String(), err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != tt.str {
				t.Errorf("String() = %q, want %q", tt.str, tt.name)
			}
			got, err := tt.parse(strings.ToUpper(tt.name))
			if err != nil || tt.name != got {
				t.Errorf("parse(%q) = %q, %v; want %q", strings.ToUpper(tt.name), got, err, tt.name)
			}
		})
	}
	for _, bad := range []func() error{
		func() error { _, err := ParseProto("icmp"); return err },
		func() error { _, err := ParseForwarding("nat"); return err },
		func() error { _, err := ParseBackendState("up"); return err },
		func() error { _, err := ParseMode("offload"); return err },
	} {
		if bad() == nil {
			t.Error("parsing an unknown name succeeded")
		}
	}
	if want, got := "proto(1)", Proto(1).String(); want != got {
		t.Errorf("Proto(1) = %q, want %q", got, want)
	}
	if want, got := "state(9)", BackendState(9).String(); want != got {
		t.Errorf("BackendState(9) = %q, want %q", got, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	mod := func(f func(*Options)) Options {
		o := DefaultOptions()
		f(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{"defaults", DefaultOptions(), nil},
		{"small prime ring", mod(func(o *Options) { o.RingSize = 13; o.MaxVIPs = 1; o.MaxBackends = 2; o.MaxFlows = 1 }), nil},
		{"largest bounds", mod(func(o *Options) {
			o.MaxVIPs, o.MaxBackends, o.MaxFlows, o.RingSize = MaxMaxVIPs, MaxMaxBackends, MaxMaxFlows, 16777213
		}), nil},
		{"zero value", Options{}, []string{"max VIPs 0", "max flows 0", "max backends 0", "ring size 0"}},
		{"ring not prime", mod(func(o *Options) { o.RingSize = 65536 }), []string{"ring size 65536 is not prime"}},
		{"ring one", mod(func(o *Options) { o.RingSize = 1 }), []string{"ring size 1 out of range"}},
		{"ring too big", mod(func(o *Options) { o.RingSize = 16777259 }), []string{"ring size 16777259 out of range"}},
		{"one backend slot", mod(func(o *Options) { o.MaxBackends = 1 }), []string{"max backends 1 out of range 2.."}},
		{"too many flows", mod(func(o *Options) { o.MaxFlows = MaxMaxFlows + 1 }), []string{"max flows"}},
		{"too many VIPs", mod(func(o *Options) { o.MaxVIPs = MaxMaxVIPs + 1 }), []string{"max VIPs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate() = %v, want ErrInvalidOptions", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
	if want, got := (Options{256, 4096, 65536, 65537, 0x5eed1b0b}), DefaultOptions(); want != got {
		t.Errorf("DefaultOptions() = %+v, want %+v", got, want)
	}
}

func TestFlowEntries(t *testing.T) {
	tests := []struct {
		flows, want uint32
	}{
		{65536, 65536},
		{129, 132},
		{1, 4},
		{4, 4},
		{MaxMaxFlows, MaxMaxFlows},
	}
	for _, tt := range tests {
		o := Options{MaxFlows: tt.flows}
		if got := o.flowEntries(); got != tt.want {
			t.Errorf("MaxFlows %d: %d entries, want %d", tt.flows, got, tt.want)
		}
		if got := o.flowBuckets(); got*FlowWays != tt.want {
			t.Errorf("MaxFlows %d: %d buckets of %d, want %d entries", tt.flows, got, FlowWays, tt.want)
		}
	}
}
