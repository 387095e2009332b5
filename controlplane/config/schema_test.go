package config

import (
	"reflect"
	"testing"
)

// TestSchemaTags walks every struct of the schema: tags parse (fieldsOf
// panics otherwise), keys are unique, bounds are within what the Go type
// holds, every enum has values, and every field type has a decoder and an
// encoder (value and mapping panic on an unknown type).
func TestSchemaTags(t *testing.T) {
	seen := make(map[reflect.Type]bool)
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		keys := make(map[string]bool)
		for _, f := range fieldsOf(typ) {
			where := typ.Name() + "." + f.name
			if keys[f.name] {
				t.Errorf("%s: key given twice", where)
			}
			keys[f.name] = true
			lo, hi := naturalRange(f.typ)
			if f.min > f.max || f.min < lo || f.max > hi {
				t.Errorf("%s: bounds %d..%d outside the type's %d..%d", where, f.min, f.max, lo, hi)
			}
			if f.typ.Implements(enumType) && len(reflect.Zero(f.typ).Interface().(enum).allowed()) == 0 {
				t.Errorf("%s: enum without values", where)
			}
			switch e := f.typ; {
			case e.Kind() == reflect.Slice:
				e = e.Elem()
				if e.Kind() == reflect.Struct && e != addrType && e != prefixType {
					walk(e)
				}
			case e.Kind() == reflect.Pointer:
				walk(e.Elem())
			case e.Kind() == reflect.Struct && e != addrType && e != prefixType:
				walk(e)
			}
		}
		// A zero value of every type encodes (String walks every field).
		_ = encoder{}.mapping(reflect.New(typ).Elem(), "")
	}
	walk(reflect.TypeFor[Config]())
	if len(seen) != 11 {
		t.Errorf("walked %d struct types, want the 11 of the schema", len(seen))
	}
}
