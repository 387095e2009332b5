package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds what Load reads: a configuration of thousands of
// services is well under a megabyte.
const MaxFileSize = 16 << 20

// Load reads, parses and validates the configuration file at path.
// A file that cannot be read gives a wrapped *os.PathError; a file with
// problems gives an *Error listing all of them.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{Problems: []Problem{{File: path, Message: fmt.Sprintf("the file is larger than %d MiB; is it the right file?", MaxFileSize>>20)}}}
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration. name is how errors refer to
// the file. The returned Config holds every effective value, defaults
// included; on any problem Parse returns nil and an *Error listing every
// problem found.
func Parse(name string, data []byte) (*Config, error) {
	src := newSource(name)
	doc, p := parseYAML(name, data)
	if p != nil {
		return nil, &Error{Problems: []Problem{*p}}
	}
	var c Config
	d := newDecoder(src, doc)
	d.root(doc, &c)
	if d.overflow {
		return nil, &Error{Problems: d.probs[len(d.probs)-1:]}
	}
	applyDefaults(&c, src.isGiven)
	probs := append(d.probs, validate(&c, src)...)
	if len(probs) > 0 {
		return nil, &Error{Problems: sortProblems(probs)}
	}
	c.src = src
	return &c, nil
}

// parseYAML parses data into a document node, turning YAML syntax errors,
// an empty file and a stream of several documents into a Problem.
func parseYAML(name string, data []byte) (doc *yaml.Node, p *Problem) {
	// The YAML parser is third-party code fed untrusted input: a panic in it
	// must come back as a problem, not take the daemon down on a reload.
	defer func() {
		if r := recover(); r != nil {
			doc, p = nil, &Problem{File: name, Message: fmt.Sprintf("not valid YAML (the parser failed: %v)", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyProblem(name)
		}
		return nil, syntaxProblem(name, err)
	}
	if len(first.Content) == 0 {
		return nil, emptyProblem(name)
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(name, err)
	default:
		return nil, &Problem{File: name, Line: second.Line, Column: second.Column,
			Message: "a second YAML document starts here (after ---); put the whole configuration in one document"}
	}
	return &first, nil
}

func emptyProblem(name string) *Problem {
	return &Problem{File: name, Message: "the file is empty; a configuration needs at least director.interface"}
}

// syntaxProblem turns a yaml.v3 error ("yaml: line 3: did not find
// expected key") into a Problem with the line as a position.
//
// yaml.v3 (3.0.1) prints scanner errors with 1-based lines but parser
// errors with 0-based ones, and leaves the line out when it is 0; the
// parser's messages are recognised and corrected, so that the line points
// at the construct the parser gave up on.
func syntaxProblem(name string, err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{File: name}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				p.Line, msg = line, after
			}
		}
	}
	if isParserError(msg) {
		p.Line++
	}
	p.Message = "not valid YAML: " + msg
	return p
}

// isParserError reports whether msg is one of the problems yaml.v3's
// parser (rather than its scanner) reports.
func isParserError(msg string) bool {
	switch msg {
	case "did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"did not find expected '-' indicator",
		"did not find expected <document start>",
		"did not find expected <stream-start>",
		"did not find expected key",
		"did not find expected node content",
		"found duplicate %TAG directive",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}
