package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// field is one key of a mapping, read from the struct tags.
type field struct {
	index    int
	name     string
	typ      reflect.Type
	required bool
	// zero: the zero value is meaningful and differs from the default, so
	// String shows it even for a Config built in code.
	zero bool
	// hex: String writes the number in hexadecimal.
	hex      bool
	min, max int64 // inclusive bounds for numbers and durations (ns)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	enumType     = reflect.TypeFor[enum]()
)

// fieldsOf lists the keys of a struct type, in declaration order. The
// schema is static, so a malformed tag is a programming error and panics
// (TestSchemaTags walks every type).
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if name == "" || !sf.IsExported() {
			continue
		}
		f := field{index: i, name: name, typ: sf.Type}
		f.min, f.max = naturalRange(sf.Type)
		for opt := range strings.SplitSeq(sf.Tag.Get("cfg"), ",") {
			key, val, _ := strings.Cut(opt, "=")
			switch key {
			case "":
			case "required":
				f.required = true
			case "zero":
				f.zero = true
			case "hex":
				f.hex = true
			case "min":
				f.min = parseBound(sf.Type, val)
			case "max":
				f.max = parseBound(sf.Type, val)
			default:
				panic(fmt.Sprintf("config: %s.%s: unknown cfg option %q", t.Name(), sf.Name, opt))
			}
		}
		fs = append(fs, f)
	}
	return fs
}

// naturalRange is what a number type can hold; durations are never negative.
func naturalRange(t reflect.Type) (int64, int64) {
	if t == durationType {
		return 0, math.MaxInt64
	}
	switch t.Kind() {
	case reflect.Uint8:
		return 0, math.MaxUint8
	case reflect.Uint16:
		return 0, math.MaxUint16
	case reflect.Uint32:
		return 0, math.MaxUint32
	case reflect.Int, reflect.Int64:
		return math.MinInt64, math.MaxInt64
	}
	return 0, 0
}

func parseBound(t reflect.Type, s string) int64 {
	if t == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			panic(fmt.Sprintf("config: bad duration bound %q: %v", s, err))
		}
		return int64(d)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("config: bad bound %q: %v", s, err))
	}
	return n
}

// lookup finds the field named name.
func lookup(fs []field, name string) (field, bool) {
	for _, f := range fs {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// isContainer reports whether a null value means "empty" for t (a section
// or a list) rather than a missing scalar.
func isContainer(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		return t != addrType && t != prefixType
	case reflect.Slice, reflect.Pointer:
		return true
	}
	return false
}

// expected describes the values a field accepts, for error messages.
func expected(f field) string {
	t := f.typ
	switch {
	case t == durationType:
		if f.min > 0 || f.max < math.MaxInt64 {
			return fmt.Sprintf("a duration from %s to %s, such as \"500ms\" or \"2s\"", fmtDuration(time.Duration(f.min)), fmtDuration(time.Duration(f.max)))
		}
		return `a duration such as "500ms" or "2s"`
	case t == addrType:
		return "an IPv4 address"
	case t == prefixType:
		return "an IPv4 address or CIDR such as 198.18.1.100/32"
	case t.Implements(enumType):
		return orList(reflect.Zero(t).Interface().(enum).allowed())
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Int, reflect.Int64:
		if f.max == f.min+1 {
			return fmt.Sprintf("%d or %d", f.min, f.max)
		}
		return fmt.Sprintf("a whole number from %d to %d", f.min, f.max)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct && t.Elem() != addrType && t.Elem() != prefixType {
			return "a list of mappings"
		}
		return "a list"
	}
	return "a mapping of keys to values"
}

// orList joins values as "a", "a or b", "a, b or c".
func orList(vs []string) string {
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}

// fmtDuration writes d in its largest whole unit ("2m", "90s", "1500ms"),
// which time.ParseDuration reads back.
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return d.String()
}
