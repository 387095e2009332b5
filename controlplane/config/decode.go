package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The work of decoding one file is bounded: YAML aliases and merge keys
// can make a small file expand enormously ("billion laughs"). Decoding may
// visit expansionFactor times the nodes the file holds, plus
// expansionSlack; sharing a health check or a backend list between
// services stays far below that, and a file without aliases visits each
// node once.
const (
	expansionFactor = 10
	expansionSlack  = 100_000
)

// maxMergeDepth bounds nested merge keys (<<: *a where a merges *b ...).
const maxMergeDepth = 16

// decoder walks a yaml.Node tree into the Config structs, checking each
// value's type, format and bounds and recording its position. It keeps
// going after a problem so that every problem in the file is reported.
type decoder struct {
	src      *source
	probs    []Problem
	nodes    int // visited so far
	budget   int // most nodes that may be visited
	overflow bool
	schema   map[reflect.Type][]field
}

func newDecoder(src *source, doc *yaml.Node) *decoder {
	return &decoder{
		src:    src,
		budget: expansionFactor*countNodes(doc) + expansionSlack,
		schema: make(map[reflect.Type][]field),
	}
}

// countNodes counts the nodes of the tree as written, aliases not followed.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, child := range n.Content {
		c += countNodes(child)
	}
	return c
}

// fields returns the schema of struct type t.
func (d *decoder) fields(t reflect.Type) []field {
	fs, ok := d.schema[t]
	if !ok {
		fs = fieldsOf(t)
		d.schema[t] = fs
	}
	return fs
}

// fail records a problem at node n for path and marks path as bad.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.probs = append(d.probs, Problem{
		File: d.src.file, Line: n.Line, Column: n.Column, Path: path,
		Message: fmt.Sprintf(format, args...),
	})
	d.src.bad[path] = true
}

// failAt records a problem at the recorded position of path (or of its
// enclosing section) and marks path as bad.
func (d *decoder) failAt(path, format string, args ...any) {
	d.probs = append(d.probs, d.src.problem(path, format, args...))
	d.src.bad[path] = true
}

// resolve follows an alias to its anchored node and counts the visit.
// It returns nil once the node budget is spent.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 64; i++ {
		n = n.Alias
	}
	d.nodes++
	if d.nodes > d.budget {
		if !d.overflow {
			d.overflow = true
			d.probs = append(d.probs, Problem{
				File: d.src.file, Line: n.Line, Column: n.Column,
				Message: fmt.Sprintf("the file expands to more than %d values through YAML aliases (%d times its size); use fewer nested aliases", d.budget, expansionFactor),
			})
		}
		return nil
	}
	return n
}

// root decodes the document's top-level mapping into c.
func (d *decoder) root(doc *yaml.Node, c *Config) {
	n := d.resolve(doc.Content[0])
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "", "the top level must be a mapping with the keys director, services and vrrp; found %s", kindOf(n))
		return
	}
	d.mapping(n, "", reflect.ValueOf(c).Elem())
}

// pair is one key and its value in a mapping, merge keys expanded.
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n in file order, followed by those
// merged in with "<<" that n does not set itself (YAML merge keys: an
// explicit key wins, then earlier merged mappings win over later ones).
// A key given twice in one mapping is reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out []pair
	var merges []*yaml.Node
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a plain name; found %s", kindOf(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, join(path, k.Value), "given twice in one mapping; the first is at line %d", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, n.Content[i+1]})
	}
	for _, m := range merges {
		m = d.resolve(m)
		if m == nil {
			return out
		}
		if depth >= maxMergeDepth {
			d.fail(m, path, "merge keys (<<) nested more than %d deep", maxMergeDepth)
			continue
		}
		var sources []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{m}
		case yaml.SequenceNode:
			for _, item := range m.Content {
				if item = d.resolve(item); item == nil {
					return out
				}
				sources = append(sources, item)
			}
		default:
			sources = []*yaml.Node{m}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				d.fail(s, path, "a merge key (<<) takes a mapping or a list of mappings, such as *defaults; found %s", kindOf(s))
				continue
			}
			for _, p := range d.pairs(s, path, depth+1) {
				if _, ok := seen[p.key.Value]; !ok {
					seen[p.key.Value] = p.key
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// mapping decodes mapping n into the struct v.
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	fields := d.fields(v.Type())
	misspelt := make(map[string]bool) // fields an unknown key was taken for
	for _, p := range d.pairs(n, path, 0) {
		name := p.key.Value
		child := join(path, name)
		if path == "" && strings.HasPrefix(name, "x-") {
			continue // a place for anchors, never read (x-check: &check {...})
		}
		f, ok := lookup(fields, name)
		if !ok {
			msg, guess := unknownField(v.Type(), name, fields)
			misspelt[guess] = true
			d.fail(p.key, child, "%s", msg)
			continue
		}
		val := d.resolve(p.val)
		if val == nil {
			return
		}
		if val.Kind == yaml.ScalarNode {
			d.src.pos[child] = position{val.Line, val.Column}
		} else {
			d.src.pos[child] = position{p.key.Line, p.key.Column}
		}
		if isNull(val) {
			if isContainer(f.typ) {
				continue // an empty section or list
			}
			d.fail(val, child, "has no value; expected %s (or remove the line)", expected(f))
			continue
		}
		d.src.given[child] = true
		d.value(val, child, v.Field(f.index), f)
	}
	for _, f := range fields {
		child := join(path, f.name)
		// A misspelt required key is reported once, as the misspelling.
		if f.required && !d.src.given[child] && !d.src.bad[child] && !misspelt[f.name] {
			d.failAt(child, "missing; %s", missingHint(v.Type(), f))
		}
	}
}

// value decodes the non-null node n into v, a field described by f.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, f field) {
	t := v.Type()
	switch {
	case t == durationType:
		d.duration(n, path, v, f)
		return
	case t == addrType:
		if a, ok := d.addr(n, path, f); ok {
			v.Set(reflect.ValueOf(a))
		}
		return
	case t == prefixType:
		d.prefix(n, path, v, f)
		return
	case t.Implements(enumType):
		d.enum(n, path, v, f)
		return
	}
	switch t.Kind() {
	case reflect.String:
		if d.scalar(n, path, f) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		d.bool(n, path, v, f)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Int, reflect.Int64:
		d.integer(n, path, v, f)
	case reflect.Slice:
		d.list(n, path, v, f)
	case reflect.Pointer:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
			return
		}
		v.Set(reflect.New(t.Elem()))
		d.mapping(n, path, v.Elem())
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
			return
		}
		d.mapping(n, path, v)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", t))
	}
}

// scalar checks that n is a single value.
func (d *decoder) scalar(n *yaml.Node, path string, f field) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
		return false
	}
	return true
}

func (d *decoder) list(n *yaml.Node, path string, v reflect.Value, f field) {
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode && f.typ.Elem().Kind() == reflect.String && isCommand(f.name) {
			d.fail(n, path, "expected a list such as [\"/usr/local/bin/check\", \"--quiet\"]; a command runs without a shell, so each argument is its own item")
			return
		}
		if n.Kind == yaml.ScalarNode {
			d.fail(n, path, "expected a list; found %s (write [%s] for a list of one)", kindOf(n), n.Value)
			return
		}
		d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
		return
	}
	elem := f
	elem.typ = f.typ.Elem()
	elem.min, elem.max = naturalRange(elem.typ)
	s := reflect.MakeSlice(f.typ, 0, len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		item = d.resolve(item)
		if item == nil {
			return
		}
		d.src.pos[p] = position{item.Line, item.Column}
		s = reflect.Append(s, reflect.Zero(elem.typ))
		if isNull(item) {
			d.fail(item, p, "empty list item; expected %s", expected(elem))
			continue
		}
		d.src.given[p] = true
		d.value(item, p, s.Index(i), elem)
	}
	if s.Len() > 0 {
		v.Set(s) // an empty list stays nil, as if left out
	}
	if f.required && len(n.Content) == 0 {
		d.fail(n, path, "the list is empty; %s", missingHint(nil, f))
	}
}

func (d *decoder) bool(n *yaml.Node, path string, v reflect.Value, f field) {
	if !d.scalar(n, path, f) {
		return
	}
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.fail(n, path, "%s is not allowed; use true or false", quote(n))
		return
	}
	v.SetBool(b)
}

func (d *decoder) integer(n *yaml.Node, path string, v reflect.Value, f field) {
	if !d.scalar(n, path, f) {
		return
	}
	if tag := n.ShortTag(); (tag == "!!int" || tag == "!!float") && leadingZero(n.Value) {
		d.fail(n, path, "%s has a leading 0, which YAML reads as octal; write %s", n.Value, withoutLeadingZeros(n.Value))
		return
	}
	switch n.ShortTag() {
	case "!!int":
	case "!!str":
		if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
			d.fail(n, path, "expected %s, found the string %q; remove the quotes", expected(f), n.Value)
			return
		}
		d.fail(n, path, "%q is not a number; expected %s", n.Value, expected(f))
		return
	case "!!float":
		d.fail(n, path, "%s is not a whole number; expected %s", n.Value, expected(f))
		return
	default:
		d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
		return
	}
	var i int64
	if err := n.Decode(&i); err != nil || i < f.min || i > f.max {
		d.fail(n, path, "%s is out of range; expected %s", n.Value, expected(f))
		return
	}
	if v.CanUint() {
		v.SetUint(uint64(i))
	} else {
		v.SetInt(i)
	}
}

func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value, f field) {
	if !d.scalar(n, path, f) {
		return
	}
	var dur time.Duration
	switch n.ShortTag() {
	case "!!int", "!!float":
		if x, err := strconv.ParseFloat(n.Value, 64); err == nil && x == 0 {
			break // 0 needs no unit
		}
		d.fail(n, path, "%s has no unit; write %ss for seconds or %sms for milliseconds", n.Value, n.Value, n.Value)
		return
	case "!!str":
		var err error
		dur, err = time.ParseDuration(strings.TrimSpace(n.Value))
		if err != nil {
			d.fail(n, path, "%q is not a duration; write a number and a unit (ms, s, m or h) such as \"500ms\" or \"2s\"", n.Value)
			return
		}
	default:
		d.fail(n, path, "expected %s; found %s", expected(f), kindOf(n))
		return
	}
	if int64(dur) < f.min || int64(dur) > f.max {
		if dur < 0 {
			d.fail(n, path, "%s is negative; expected %s", n.Value, expected(f))
			return
		}
		d.fail(n, path, "%s is out of range; expected %s", n.Value, expected(f))
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) addr(n *yaml.Node, path string, f field) (netip.Addr, bool) {
	if !d.scalar(n, path, f) {
		return netip.Addr{}, false
	}
	s := strings.TrimSpace(n.Value)
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			d.fail(n, path, "%q is a CIDR; expected a plain IPv4 address such as 198.18.1.100", s)
		} else {
			d.fail(n, path, "%q is not an IPv4 address; expected dotted decimal such as 198.18.1.100", s)
		}
		return netip.Addr{}, false
	}
	if !ipv4Only(d, n, path, a) {
		return netip.Addr{}, false
	}
	return a, true
}

// ipv4Only rejects IPv6, which the data plane cannot balance yet.
func ipv4Only(d *decoder, n *yaml.Node, path string, a netip.Addr) bool {
	switch {
	case a.Is4In6():
		d.fail(n, path, "%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
		return false
	case a.Is6():
		d.fail(n, path, "%s is an IPv6 address; xdplb supports only IPv4 for now", a)
		return false
	}
	return true
}

func (d *decoder) prefix(n *yaml.Node, path string, v reflect.Value, f field) {
	if !d.scalar(n, path, f) {
		return
	}
	s := strings.TrimSpace(n.Value)
	if !strings.Contains(s, "/") {
		if a, ok := d.addr(n, path, f); ok {
			v.Set(reflect.ValueOf(netip.PrefixFrom(a, 32)))
		}
		return
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		d.fail(n, path, "%q is not a valid CIDR; expected an IPv4 address and a prefix length from 0 to 32, such as 198.18.1.100/32", s)
		return
	}
	if !ipv4Only(d, n, path, p.Addr()) {
		return
	}
	v.Set(reflect.ValueOf(p))
}

func (d *decoder) enum(n *yaml.Node, path string, v reflect.Value, f field) {
	if !d.scalar(n, path, f) {
		return
	}
	allowed := reflect.Zero(f.typ).Interface().(enum).allowed()
	for _, a := range allowed {
		if n.Value == a {
			v.SetString(a)
			return
		}
	}
	for _, a := range allowed {
		if strings.EqualFold(n.Value, a) {
			d.fail(n, path, "%q is not allowed; values are lower-case: use %s", n.Value, a)
			return
		}
	}
	msg := fmt.Sprintf("%s is not allowed; use %s", quote(n), orList(allowed))
	if h := valueHint(f.typ, n.Value); h != "" {
		msg += " (" + h + ")"
	}
	d.fail(n, path, "%s", msg)
}

// isNull reports whether n is an explicit or empty YAML null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindOf names what n is, for "expected X; found Y" messages.
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "nothing"
}

// quote writes a scalar as the operator wrote it: strings quoted, numbers
// and booleans bare.
func quote(n *yaml.Node) string {
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// isCommand reports whether a list field is a command line.
func isCommand(name string) bool {
	return name == "command" || strings.HasPrefix(name, "notify")
}

// leadingZero reports whether s is a decimal-looking number with a leading
// zero ("017"), which YAML 1.1 and yaml.v3 read as octal.
func leadingZero(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if len(s) < 2 || s[0] != '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// withoutLeadingZeros writes a decimal number without its leading zeros,
// keeping a minus sign: "-050" -> "-50", "00" -> "0".
func withoutLeadingZeros(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign = "-"
	}
	digits := strings.TrimLeft(strings.TrimLeft(s, "+-"), "0")
	if digits == "" {
		return "0"
	}
	return sign + digits
}
