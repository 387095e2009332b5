package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// stateFile is the name of the file in state_dir that holds the runtime
// changes.
const stateFile = "runtime.json"

// stateVersion is the layout of stateFile. A daemon refuses a file of a
// later version rather than misread it.
const stateVersion = 1

// Admin states an operator sets on a backend.
const (
	adminNone     = ""
	adminDraining = "draining"
	adminDown     = "down"
)

// runtimeState is every decision made while the daemon runs, through the
// API, on top of the configuration file: drains, and VIPs and backends
// added, deleted or changed. It is saved to state_dir before a decision
// takes effect, so a daemon killed at any moment and started again applies
// the same decisions.
type runtimeState struct {
	Version int `json:"version"`
	// VIPs holds the changes by VIP, in the CLI's form
	// (198.18.1.100:80/tcp), the data plane's identity of a service.
	VIPs map[string]*vipChange `json:"vips,omitempty"`
}

// vipChange is what was changed on one VIP.
type vipChange struct {
	// Added defines a VIP that the configuration file does not have.
	Added *vipSpec `json:"added,omitempty"`
	// Deleted removes a VIP of the configuration file.
	Deleted  bool                      `json:"deleted,omitempty"`
	Backends map[string]*backendChange `json:"backends,omitempty"`
}

// vipSpec is a VIP added at runtime.
type vipSpec struct {
	Forwarding        string `json:"forwarding"`
	Scheduler         string `json:"scheduler"`
	PersistencePrefix uint8  `json:"persistence_prefix,omitempty"`
	// HealthCheck is the check as given (YAML, as a health_check
	// section); empty: not checked.
	HealthCheck string `json:"health_check,omitempty"`
}

// backendChange is what was changed on one backend of a VIP.
type backendChange struct {
	// Added: a backend the configuration does not list for the VIP.
	Added bool `json:"added,omitempty"`
	// Deleted: a backend of the configuration taken out.
	Deleted bool `json:"deleted,omitempty"`
	// Weight overrides the configured weight.
	Weight *uint32 `json:"weight,omitempty"`
	// Admin is adminDraining or adminDown, set by an operator.
	Admin string `json:"admin,omitempty"`
	// MAC pins the next-hop MAC instead of resolving it.
	MAC string `json:"mac,omitempty"`
}

func (b *backendChange) empty() bool {
	return !b.Added && !b.Deleted && b.Weight == nil && b.Admin == adminNone && b.MAC == ""
}

func (v *vipChange) empty() bool {
	return v.Added == nil && !v.Deleted && len(v.Backends) == 0
}

func newRuntimeState() *runtimeState {
	return &runtimeState{Version: stateVersion, VIPs: map[string]*vipChange{}}
}

// clone returns a deep copy, so a change can be prepared, saved and only
// then made current.
func (r *runtimeState) clone() *runtimeState {
	out := &runtimeState{Version: r.Version, VIPs: make(map[string]*vipChange, len(r.VIPs))}
	for k, v := range r.VIPs {
		c := &vipChange{Deleted: v.Deleted}
		if v.Added != nil {
			a := *v.Added
			c.Added = &a
		}
		if v.Backends != nil {
			c.Backends = make(map[string]*backendChange, len(v.Backends))
			for a, b := range v.Backends {
				bc := *b
				if b.Weight != nil {
					w := *b.Weight
					bc.Weight = &w
				}
				c.Backends[a] = &bc
			}
		}
		out.VIPs[k] = c
	}
	return out
}

// vip returns the change record of vip, creating it.
func (r *runtimeState) vip(vip string) *vipChange {
	v, ok := r.VIPs[vip]
	if !ok {
		v = &vipChange{}
		r.VIPs[vip] = v
	}
	return v
}

// backend returns the change record of a backend of vip, creating it.
func (r *runtimeState) backend(vip, addr string) *backendChange {
	v := r.vip(vip)
	if v.Backends == nil {
		v.Backends = map[string]*backendChange{}
	}
	b, ok := v.Backends[addr]
	if !ok {
		b = &backendChange{}
		v.Backends[addr] = b
	}
	return b
}

// compact removes empty records, so the file lists only decisions in
// force.
func (r *runtimeState) compact() {
	for k, v := range r.VIPs {
		for a, b := range v.Backends {
			if b.empty() {
				delete(v.Backends, a)
			}
		}
		if v.empty() {
			delete(r.VIPs, k)
		}
	}
}

// equal reports whether two states hold the same decisions.
func (r *runtimeState) equal(o *runtimeState) bool {
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// store keeps the runtime state in a directory.
type store struct {
	dir string
}

func (s store) path() string { return filepath.Join(s.dir, stateFile) }

// load reads the saved state; a missing file is an empty state. A file
// that cannot be parsed is an error: starting without it would silently
// undo an operator's drains.
func (s store) load() (*runtimeState, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return newRuntimeState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime state: %w", err)
	}
	st := newRuntimeState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("read runtime state %s: %v; it holds the drains and other changes made through the API: repair it, or remove it to start from the configuration alone", s.path(), err)
	}
	if st.Version > stateVersion {
		return nil, fmt.Errorf("read runtime state %s: version %d was written by a newer xdplb (this one reads version %d)", s.path(), st.Version, stateVersion)
	}
	if st.VIPs == nil {
		st.VIPs = map[string]*vipChange{}
	}
	st.Version = stateVersion
	return st, nil
}

// save writes st atomically: to a temporary file in the same directory,
// flushed to disk, then renamed over the old file, and the directory
// flushed, so that after a crash the file holds either the old state or
// the new one, whole.
func (s store) save(st *runtimeState) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save runtime state: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save runtime state: %w", err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(s.dir, "."+stateFile+".*")
	if err != nil {
		return fmt.Errorf("save runtime state: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("save runtime state: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.path()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save runtime state: %w", err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("save runtime state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save runtime state: sync %s: %w", s.dir, err)
	}
	return nil
}

// sortedKeys returns the keys of m in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
