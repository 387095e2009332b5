package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic; a refusal
// must be an *Error whose problems are well formed; an accepted file must
// come back from its effective configuration unchanged.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "#\n", "\x00", "- a\n", "a: [1\n", svc, vr,
		edit(svc, "port: 80", "port: 0"),
		edit(svc, "type: tcp", "type: exec\n      command: [/bin/x, \"{{.Port}}\"]"),
		edit(vr, "      virtual_router_id: 51\n", "      virtual_router_id: 51\n      version: 3\n      advert_interval: 10ms\n"),
		"x-a: &a {address: 198.18.0.21}\n" + edit(svc, "      - address: 198.18.0.21\n", "      - *a\n      - {<<: *a, weight: 0}\n"),
		"director: &d {interface: eth0, <<: *d}\n",
		"director: {interface: eth0}\nservices: [&s {name: a, services: *s}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error")
			}
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("Parse error %T %q is not an *Error with problems", err, err)
			}
			for _, p := range e.Problems {
				// "%!" in a message is a formatting mistake (%!d(MISSING)),
				// unless the input itself contains it.
				glitch := strings.Contains(p.Message, "%!") && !bytes.Contains(data, []byte("%!"))
				if p.File != "fuzz.yaml" || p.Message == "" || p.Line < 0 || p.Column < 0 || glitch {
					t.Fatalf("malformed problem %#v", p)
				}
			}
			return
		}
		out := c.String()
		again, err := Parse("effective.yaml", []byte(out))
		if err != nil {
			t.Fatalf("effective configuration of an accepted file refused:\n%v\n--- input\n%s\n--- effective\n%s", err, data, out)
		}
		if !reflect.DeepEqual(bare(c), bare(again)) {
			t.Fatalf("round trip changed the config:\nwant %+v\n got %+v", bare(c), bare(again))
		}
		if d := Diff(c, again); !d.Empty() {
			t.Fatalf("Diff of a config and its round trip: %s", d)
		}
	})
}
