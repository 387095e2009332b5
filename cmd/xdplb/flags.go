package main

// textFlag is a string flag whose help shows a value name (N, MAC,
// ADDR...) instead of "string"; the command parses it, so that every
// mistake gets the same explanation.
type textFlag struct {
	v   *string
	typ string
}

func newTextFlag(v *string, def, typ string) textFlag {
	*v = def
	return textFlag{v: v, typ: typ}
}

func (f textFlag) String() string     { return *f.v }
func (f textFlag) Set(s string) error { *f.v = s; return nil }
func (f textFlag) Type() string       { return f.typ }
