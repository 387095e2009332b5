package config

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkFrame is the configuration ParseHealthCheck validates a health
// check in: everything else is fixed and valid, so every problem found is
// the check's own. %d is the service port.
const checkFrame = `director:
  interface: lo
services:
  - name: check
    vip: 198.18.0.1
    port: %d
    forwarding: dr
    backends:
      - address: 198.18.0.2
    health_check: {}
`

// ParseHealthCheck parses and validates a health check given on its own,
// for a service on port servicePort (0: every port), exactly as a
// service's health_check section of a file is: the same keys, defaults
// and rules. data is YAML, typically a flow mapping such as
// `{type: http, path: /healthz, interval: 2s}`; name is how errors refer to
// it, and their paths start at health_check. It serves checks that arrive
// through the API rather than a file.
func ParseHealthCheck(name string, data []byte, servicePort uint16) (HealthCheck, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return HealthCheck{}, &Error{Problems: []Problem{{File: name,
			Message: "empty; give the check as a mapping, such as {type: tcp} or {type: http, path: /healthz}"}}}
	}
	check, p := parseYAML(name, data)
	if p != nil {
		return HealthCheck{}, &Error{Problems: []Problem{*p}}
	}
	if n := check.Content[0]; n.Kind != yaml.MappingNode {
		return HealthCheck{}, &Error{Problems: []Problem{{File: name, Line: n.Line, Column: n.Column,
			Message: "a health check is a mapping, such as {type: tcp} or {type: http, path: /healthz}"}}}
	}
	doc, p := parseYAML(name, fmt.Appendf(nil, checkFrame, servicePort))
	if p != nil {
		panic(fmt.Sprintf("config: the health check frame does not parse: %v", p))
	}
	// Put the check's mapping in place of the frame's empty one; its
	// nodes keep their lines, which are the lines of data, and the key
	// takes the mapping's, so that a problem with the check as a whole
	// (a missing field) points at its start.
	_, services := frameEntry(doc.Content[0], "services")
	key, val := frameEntry(services.Content[0], "health_check")
	*val = *check.Content[0]
	key.Line, key.Column = val.Line, val.Column

	src := newSource(name)
	var c Config
	d := newDecoder(src, doc)
	d.root(doc, &c)
	probs := d.probs
	if !d.overflow {
		applyDefaults(&c, src.isGiven)
		probs = append(probs, validate(&c, src)...)
	}
	if len(probs) > 0 {
		for i := range probs {
			p := &probs[i]
			p.Path = strings.TrimPrefix(p.Path, "services[0].")
			if p.Path == "services[0]" {
				p.Path = ""
			}
		}
		return HealthCheck{}, &Error{Problems: sortProblems(probs)}
	}
	return c.Services[0].HealthCheck, nil
}

// frameEntry returns the key and value nodes of key in mapping m; the
// frame has them all.
func frameEntry(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	panic(fmt.Sprintf("config: the health check frame has no %q", key))
}
