package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Changes is what differs between two configurations, for a reload to
// apply only the difference. Names are service, instance and sync-group
// names: renaming one is a removal and an addition.
type Changes struct {
	// Director lists the director fields that changed, by YAML key
	// ("log_level", "max_flows"). Whether one can change without a restart
	// is the daemon's decision.
	Director   []string
	Services   SetChanges
	Instances  SetChanges
	SyncGroups SetChanges
}

// SetChanges is the difference between two lists of named items.
type SetChanges struct {
	Added   []string // in the new configuration's order
	Removed []string // in the old configuration's order
	Changed []Change // in the new configuration's order
}

// Change names an item present in both configurations and the fields of
// it that differ, by YAML key ("backends", "health_check").
type Change struct {
	Name   string
	Fields []string
}

// Diff compares two configurations. A nil old configuration is empty: at
// start-up every service and instance is added.
//
// A daemon applying the result should remove before it adds: a service
// removed and another added on the same VIP, port and protocol (a rename)
// would otherwise collide in the data plane.
func Diff(old, new *Config) Changes {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	return Changes{
		Director:   fieldChanges(reflect.ValueOf(old.Director), reflect.ValueOf(new.Director)),
		Services:   setChanges(old.Services, new.Services, func(s Service) string { return s.Name }),
		Instances:  setChanges(old.VRRP.Instances, new.VRRP.Instances, func(i Instance) string { return i.Name }),
		SyncGroups: setChanges(old.VRRP.SyncGroups, new.VRRP.SyncGroups, func(g SyncGroup) string { return g.Name }),
	}
}

func setChanges[T any](old, new []T, name func(T) string) SetChanges {
	var sc SetChanges
	before := make(map[string]T, len(old))
	for _, o := range old {
		before[name(o)] = o
	}
	after := make(map[string]bool, len(new))
	for _, n := range new {
		after[name(n)] = true
		o, ok := before[name(n)]
		if !ok {
			sc.Added = append(sc.Added, name(n))
			continue
		}
		if fields := fieldChanges(reflect.ValueOf(o), reflect.ValueOf(n)); len(fields) > 0 {
			sc.Changed = append(sc.Changed, Change{Name: name(n), Fields: fields})
		}
	}
	for _, o := range old {
		if !after[name(o)] {
			sc.Removed = append(sc.Removed, name(o))
		}
	}
	return sc
}

// fieldChanges lists the YAML keys whose values differ between two
// structs of the same type.
func fieldChanges(old, new reflect.Value) []string {
	var out []string
	for _, f := range fieldsOf(old.Type()) {
		if !equal(old.Field(f.index), new.Field(f.index)) {
			out = append(out, f.name)
		}
	}
	return out
}

// equal compares two values of a Config field; a nil and an empty list
// are equal, as they are in the file. Backends are a set: the Maglev table
// does not depend on their order, so reordering them changes nothing.
func equal(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	if ab, ok := a.Interface().([]Backend); ok {
		return slices.Equal(sortedBackends(ab), sortedBackends(b.Interface().([]Backend)))
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func sortedBackends(bs []Backend) []Backend {
	return slices.SortedFunc(slices.Values(bs), func(x, y Backend) int { return x.Address.Compare(y.Address) })
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Director) == 0 && c.Services.empty() && c.Instances.empty() && c.SyncGroups.empty()
}

func (s SetChanges) empty() bool {
	return len(s.Added) == 0 && len(s.Removed) == 0 && len(s.Changed) == 0
}

// String summarises the changes on one line, for a reload log entry:
// "services: +db -old ~web(backends,health_check); instances: ~VI_1(priority)".
func (c Changes) String() string {
	if c.Empty() {
		return "no changes"
	}
	var parts []string
	if len(c.Director) > 0 {
		parts = append(parts, "director: ~"+strings.Join(c.Director, ","))
	}
	for _, s := range []struct {
		name string
		sc   SetChanges
	}{{"services", c.Services}, {"instances", c.Instances}, {"sync_groups", c.SyncGroups}} {
		if s.sc.empty() {
			continue
		}
		var items []string
		for _, n := range s.sc.Added {
			items = append(items, "+"+n)
		}
		for _, n := range s.sc.Removed {
			items = append(items, "-"+n)
		}
		for _, ch := range s.sc.Changed {
			items = append(items, fmt.Sprintf("~%s(%s)", ch.Name, strings.Join(ch.Fields, ",")))
		}
		parts = append(parts, s.name+": "+strings.Join(items, " "))
	}
	return strings.Join(parts, "; ")
}
