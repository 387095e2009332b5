package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAnchorsAndMergeKeys(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	web := HealthCheck{
		Type: CheckHTTPS, Port: 8443, Path: "/healthz", Host: "www.example.com", ExpectStatus: 204,
		ExpectBody: "ok", TLSSkipVerify: true, Interval: 500 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Rise: 3, Fall: 2, OnFailure: OnFailureDrain,
	}
	if got := c.Services[0].HealthCheck; !reflect.DeepEqual(web, got) {
		t.Errorf("alias *web-check:\nwant %+v\n got %+v", web, got)
	}
	api := web
	api.Path = "/ready" // written next to the merge key, so it wins
	if got := c.Services[1].HealthCheck; !reflect.DeepEqual(api, got) {
		t.Errorf("merge <<: *web-check with path: /ready:\nwant %+v\n got %+v", api, got)
	}
	if got, want := c.VRRP.Instances[0].VirtualAddresses, []string{"198.18.1.100/24", "198.18.1.53/32"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("virtual_addresses = %v, want %v (host bits kept, a bare address is /32)", got, want)
	}
	if got := c.Director.HashSeed; got != 0x12345678 {
		t.Errorf("hash_seed = %#x, want 0x12345678", got)
	}
}

// A mistake inside an anchor is reported at the anchor, once for every
// place that uses it, so the operator sees both the line to fix and who
// is affected.
func TestProblemInsideAnchor(t *testing.T) {
	got := problems(t, `director:
  interface: eth0
x-check: &check
  type: http
  timeout: 3s
services:
  - {name: a, vip: 198.18.1.100, port: 80, forwarding: dr, backends: [{address: 198.18.0.21}], health_check: *check}
  - {name: b, vip: 198.18.1.101, port: 80, forwarding: dr, backends: [{address: 198.18.0.21}], health_check: *check}
  - {name: c, vip: 198.18.1.102, port: 80, forwarding: dr, backends: [{address: 198.18.0.21}], health_check: {<<: *check, interval: 5s}}
`)
	want := []string{
		"xdplb.yaml:5:12: services[0].health_check.timeout: 3s is not shorter than interval (2s, the default); a check must time out before the next one is due",
		"xdplb.yaml:5:12: services[1].health_check.timeout: 3s is not shorter than interval (2s, the default); a check must time out before the next one is due",
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("problems:\nwant %s\n got %s", strings.Join(want, "\n     "), strings.Join(got, "\n     "))
	}
}

func TestMergeKeyErrors(t *testing.T) {
	got := problems(t, edit(svc, "      type: tcp\n", "      <<: 5\n      type: tcp\n"))
	want := []string{"xdplb.yaml:11:11: services[0].health_check: a merge key (<<) takes a mapping or a list of mappings, such as *defaults; found the number 5"}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("problems:\nwant %s\n got %s", strings.Join(want, "\n     "), strings.Join(got, "\n     "))
	}
}

// Aliases let a small file expand enormously ("billion laughs"); Parse
// stops at a budget and says why, quickly.
func TestAliasExpansionBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("director: {interface: eth0}\nx-b: &b {address: 198.18.0.21}\nx-s: &s\n  name: web\n  vip: 198.18.1.100\n  port: 80\n  forwarding: dr\n  health_check: {type: none}\n  backends: [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*b")
	}
	b.WriteString("]\nservices: [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*s")
	}
	b.WriteString("]\n")
	start := time.Now()
	got := problems(t, b.String())
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Parse took %v on an alias bomb, want it to give up early", elapsed)
	}
	if len(got) != 1 || !strings.Contains(got[0], "values through YAML aliases (10 times its size); use fewer nested aliases") {
		t.Errorf("problems = %q, want one saying the file expands too much", got)
	}
}

func TestNullSectionsAreEmpty(t *testing.T) {
	c := parse(t, "director:\n  interface: eth0\nservices:\nvrrp:\n  # instances: to come\n")
	if len(c.Services) != 0 || len(c.VRRP.Instances) != 0 {
		t.Errorf("empty sections gave services %v, instances %v", c.Services, c.VRRP.Instances)
	}
}
