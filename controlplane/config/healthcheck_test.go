package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseHealthCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		port uint16
		want HealthCheck
	}{
		{"tcp with defaults", "{type: tcp}", 80, HealthCheck{Type: CheckTCP, Port: 80, Interval: DefaultCheckInterval,
			Timeout: DefaultCheckInterval / 2, Rise: DefaultRise, Fall: DefaultFall, OnFailure: DefaultOnFailure}},
		{"http, block style", "type: http\npath: /healthz\ninterval: 500ms\nrise: 1\n", 8080, HealthCheck{Type: CheckHTTP, Port: 8080,
			Path: "/healthz", ExpectStatus: DefaultExpectStatus, Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond,
			Rise: 1, Fall: DefaultFall, OnFailure: DefaultOnFailure}},
		{"port-0 service with a check port", "{type: tcp, port: 22, fall: 1, on_failure: drain}", 0, HealthCheck{Type: CheckTCP, Port: 22,
			Interval: DefaultCheckInterval, Timeout: DefaultCheckInterval / 2, Rise: DefaultRise, Fall: 1, OnFailure: OnFailureDrain}},
		{"none", "{type: none}", 80, HealthCheck{Type: CheckNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHealthCheck("--health-check", []byte(tt.in), tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseHealthCheck(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseHealthCheckProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		port uint16
		want string // the whole error
	}{
		{"empty", "  ", 80, "--health-check: empty; give the check as a mapping, such as {type: tcp} or {type: http, path: /healthz}"},
		{"not a mapping", "[tcp]", 80, "--health-check:1:1: a health check is a mapping, such as {type: tcp} or {type: http, path: /healthz}"},
		{"syntax", "{type: tcp", 80, "--health-check:2: not valid YAML: did not find expected ',' or '}'"},
		{"interval out of range", "{type: http, interval: 5ms}", 80,
			`--health-check:1:24: health_check.interval: 5ms is out of range; expected a duration from 10ms to 1h, such as "500ms" or "2s"`},
		{"field of another type", "{type: tcp, path: /x}", 80,
			"--health-check:1:19: health_check.path: applies only to http or https checks, not tcp; remove it"},
		{"timeout not below interval", "{type: tcp, timeout: 3s, interval: 1s}", 80,
			"--health-check:1:22: health_check.timeout: 3s is not shorter than interval (1s); a check must time out before the next one is due"},
		{"misspelt key", "{tpye: tcp}", 80, "--health-check:1:2: health_check.tpye: unknown field; did you mean type?"},
		{"exec without a command", "type: exec", 80,
			`--health-check:1:1: health_check.command: missing; an exec check needs the command as a list, such as ["/usr/local/bin/check", "{{.Address}}"]`},
		{"port-0 service without a check port", "{type: tcp}", 0,
			"--health-check:1:1: health_check.port: missing; the service forwards every port (port: 0), so say which port the tcp check connects to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHealthCheck("--health-check", []byte(tt.in), tt.port)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("ParseHealthCheck(%q) = %v, want an *Error", tt.in, err)
			}
			if got := strings.TrimSpace(err.Error()); got != tt.want {
				t.Errorf("ParseHealthCheck(%q) error\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}
