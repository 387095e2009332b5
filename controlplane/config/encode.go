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

// String returns the effective configuration as YAML: every value the
// daemon uses, with "# default" after each value the file left out. Parse
// reads it back to an equal Config, so `xdplb config check --effective`
// output is itself a valid configuration.
func (c *Config) String() string {
	e := encoder{src: c.src}
	root := e.mapping(reflect.ValueOf(*c), "")
	if c.src != nil {
		root.HeadComment = fmt.Sprintf("Effective configuration of %s; \"# default\" marks values the file leaves out.", c.src.file)
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		// Only scalars, lists and mappings of valid strings are built.
		panic(fmt.Sprintf("config: encode effective configuration: %v", err))
	}
	return b.String()
}

// encoder builds a yaml.Node tree from the Config structs, the mirror of
// decoder.
type encoder struct {
	src *source // nil for a Config built in code
}

func (e encoder) given(path string) bool { return e.src == nil || e.src.given[path] }

func (e encoder) mapping(v reflect.Value, path string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		child := join(path, f.name)
		// A zero value is shown only when it was written, or when zero
		// means something other than the default (weight: 0).
		if fv.IsZero() && !(f.zero || e.src != nil && e.src.given[child]) {
			continue
		}
		if fv.Kind() == reflect.Slice && fv.Len() == 0 && !e.given(child) {
			continue
		}
		val := e.value(fv, child)
		if val == nil {
			continue
		}
		if f.hex {
			val.Value = fmt.Sprintf("%#x", fv.Uint())
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name}
		if !e.given(child) && (val.Kind == yaml.ScalarNode || val.Style == yaml.FlowStyle) {
			val.LineComment = "default"
		}
		n.Content = append(n.Content, key, val)
	}
	return n
}

func (e encoder) value(v reflect.Value, path string) *yaml.Node {
	scalar := func(tag, s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s} }
	switch t := v.Type(); {
	case t == durationType:
		return scalar("!!str", fmtDuration(time.Duration(v.Int())))
	case t == addrType:
		return scalar("!!str", v.Interface().(netip.Addr).String())
	case t == prefixType:
		return scalar("!!str", v.Interface().(netip.Prefix).String())
	}
	switch v.Kind() {
	case reflect.String:
		return scalar("!!str", v.String())
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10))
	case reflect.Int, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return e.mapping(v.Elem(), path)
	case reflect.Struct:
		return e.mapping(v, path)
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if k := v.Type().Elem().Kind(); k != reflect.Struct || v.Type().Elem() == addrType || v.Type().Elem() == prefixType {
			n.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			n.Content = append(n.Content, e.value(v.Index(i), index(path, i)))
		}
		return n
	}
	panic(fmt.Sprintf("config: no encoder for %s", v.Type()))
}
