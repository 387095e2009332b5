package config

import (
	"fmt"
	"strconv"
	"strings"
)

// position is a 1-based line and column in the file.
type position struct{ line, col int }

// source records, for one parsed file, where each field path was written,
// which paths the file gave a value, and which values failed to decode (so
// that later checks do not pile follow-on errors onto them).
type source struct {
	file  string
	pos   map[string]position
	given map[string]bool
	bad   map[string]bool
}

func newSource(file string) *source {
	return &source{
		file:  file,
		pos:   make(map[string]position),
		given: make(map[string]bool),
		bad:   make(map[string]bool),
	}
}

// isGiven reports whether the file gave path a (non-null) value.
func (s *source) isGiven(path string) bool { return s.given[path] }

// isBad reports whether path, or a section holding it, failed to decode.
func (s *source) isBad(path string) bool {
	for {
		if s.bad[path] {
			return true
		}
		parent, ok := parentPath(path)
		if !ok {
			return false
		}
		path = parent
	}
}

// locate returns where path is written or, for a field the file leaves
// out, where its closest enclosing section is written. The document root
// is line 1, column 1.
func (s *source) locate(path string) position {
	for {
		if p, ok := s.pos[path]; ok {
			return p
		}
		parent, ok := parentPath(path)
		if !ok {
			return position{line: 1, col: 1}
		}
		path = parent
	}
}

// problem builds a Problem at path.
func (s *source) problem(path, format string, args ...any) Problem {
	p := s.locate(path)
	return Problem{File: s.file, Line: p.line, Column: p.col, Path: path, Message: fmt.Sprintf(format, args...)}
}

// Problemf returns a Problem located at a field of c's file, so that errors
// found after parsing (an interface that does not exist, an address that
// cannot be bound) read like the parser's own. path is a field path as in
// Problem.Path; a field the file leaves out is located at its enclosing
// section. For a Config built in code the Problem has no file position.
func (c *Config) Problemf(path, format string, args ...any) Problem {
	if c.src == nil {
		return Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	}
	return c.src.problem(path, format, args...)
}

// File returns the name the configuration was loaded or parsed under.
func (c *Config) File() string {
	if c.src == nil {
		return ""
	}
	return c.src.file
}

// parentPath strips the last element of a field path:
// "services[1].backends[0]" -> "services[1].backends" -> "services[1]" ->
// "services" -> "" (the root), which has no parent.
func parentPath(path string) (string, bool) {
	if path == "" {
		return "", false
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return "", true
	}
	return path[:i], true
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index appends a list index to a path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
