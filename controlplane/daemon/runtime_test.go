package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/controlplane"
	"github.com/xdplb/xdplb/loader"
)

func u32(v uint32) *uint32 { return &v }

func TestStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := store{dir: dir}
	empty, err := s.load()
	if err != nil || len(empty.VIPs) != 0 {
		t.Fatalf("load with no file = %+v, %v; want an empty state", empty, err)
	}
	st := newRuntimeState()
	st.backend("198.18.1.100:80/tcp", "198.18.0.21").Admin = adminDraining
	st.backend("198.18.1.100:80/tcp", "198.18.0.22").Weight = u32(5)
	st.vip("198.18.1.150:443/tcp").Added = &vipSpec{Forwarding: "tun", Scheduler: "maglev"}
	if err := s.save(st); err != nil {
		t.Fatal(err)
	}
	got, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if !got.equal(st) {
		t.Errorf("loaded state differs from saved")
	}
	fi, err := os.Stat(s.path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	// Saving again replaces the file and leaves no temporary behind.
	st.backend("198.18.1.100:80/tcp", "198.18.0.21").Admin = adminNone
	st.compact()
	if err := s.save(st); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state directory holds %v, want only %s", names, stateFile)
	}
	got, _ = s.load()
	if _, ok := got.VIPs["198.18.1.100:80/tcp"].Backends["198.18.0.21"]; ok {
		t.Error("undone drain still saved")
	}
}

func TestStoreRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"corrupt", "{not json", "remove it to start from the configuration alone"},
		{"newer", `{"version": 99}`, "version 99 was written by a newer xdplb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := store{dir: dir}.load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("load = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	// A state_dir that cannot be read is an error, not an empty state.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (store{dir: notDir}).load(); err == nil || !strings.Contains(err.Error(), "read runtime state") {
		t.Errorf("load from a file as directory = %v, want an error", err)
	}
}

func TestBuildServicesWithChanges(t *testing.T) {
	cfg := mustParse(t, engineYAML)
	rt := newRuntimeState()
	web := webVIP.String()
	rt.backend(web, "198.18.0.21").Admin = adminDraining
	rt.backend(web, "198.18.0.22").Weight = u32(7)
	rt.backend(web, "198.18.0.23").Deleted = true
	added := rt.backend(web, "198.18.0.29")
	added.Added = true
	added.MAC = "02:00:00:00:00:99"
	rt.vip(dbVIP.String()).Deleted = true
	rt.vip("198.18.1.150:443/tcp").Added = &vipSpec{Forwarding: "tun", Scheduler: "failover"}
	rt.backend("198.18.1.150:443/tcp", "198.18.0.51").Added = true

	rt, dropped := pruneRuntime(cfg, rt)
	if len(dropped) != 0 {
		t.Errorf("dropped %q", dropped)
	}
	svcs, err := buildServices(cfg, nil, rt)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs[dbVIP]; ok {
		t.Error("deleted VIP still built")
	}
	w := svcs[webVIP]
	var got []string
	for _, b := range w.backends {
		got = append(got, b.addr.String()+"/"+b.origin+"/"+b.admin)
	}
	if want := []string{"198.18.0.21/config/draining", "198.18.0.22/config/", "198.18.0.29/runtime/"}; !slices.Equal(want, got) {
		t.Errorf("web backends %q, want %q", got, want)
	}
	if b, _ := w.backend(netipAddr("198.18.0.22")); b.weight != 7 || !b.weightSet {
		t.Errorf(".22 weight %d (set %v), want the override 7", b.weight, b.weightSet)
	}
	if b, _ := w.backend(netipAddr("198.18.0.29")); b.mac.String() != "02:00:00:00:00:99" {
		t.Errorf(".29 MAC %v, want the pinned one", b.mac)
	}
	rv, _ := loader.ParseVIP("198.18.1.150:443/tcp")
	r := svcs[rv]
	if r == nil || r.origin != originRuntime || r.sched != controlplane.SchedulerFailover || r.fwd != loader.ForwardTUN || r.checked() || len(r.backends) != 1 {
		t.Errorf("runtime VIP built as %+v", r)
	}
}

func TestPruneRuntime(t *testing.T) {
	cfg := mustParse(t, engineYAML)
	web := webVIP.String()
	tests := []struct {
		name    string
		change  func(rt *runtimeState)
		check   func(t *testing.T, rt *runtimeState)
		dropped string
	}{
		{"drain kept", func(rt *runtimeState) { rt.backend(web, "198.18.0.21").Admin = adminDraining },
			func(t *testing.T, rt *runtimeState) {
				if rt.VIPs[web].Backends["198.18.0.21"].Admin != adminDraining {
					t.Error("drain lost")
				}
			}, ""},
		{"drain of a backend the file dropped", func(rt *runtimeState) { rt.backend(web, "198.18.0.99").Admin = adminDraining },
			func(t *testing.T, rt *runtimeState) {
				if len(rt.VIPs) != 0 {
					t.Errorf("kept %+v", rt.VIPs)
				}
			}, "the configuration no longer lists it"},
		{"added VIP now in the file", func(rt *runtimeState) {
			rt.vip(web).Added = &vipSpec{Forwarding: "tun", Scheduler: "maglev"}
			rt.backend(web, "198.18.0.21").Admin = adminDraining
		},
			func(t *testing.T, rt *runtimeState) {
				if rt.VIPs[web].Added != nil || rt.VIPs[web].Backends["198.18.0.21"].Admin != adminDraining {
					t.Errorf("got %+v: want the definition dropped, the drain kept", rt.VIPs[web])
				}
			}, "which wins"},
		{"added backend now in the file", func(rt *runtimeState) {
			b := rt.backend(web, "198.18.0.22")
			b.Added = true
			b.Weight = u32(4)
		},
			func(t *testing.T, rt *runtimeState) {
				b := rt.VIPs[web].Backends["198.18.0.22"]
				if b.Added || b.Weight == nil || *b.Weight != 4 {
					t.Errorf("got %+v: want no longer added, weight kept", b)
				}
			}, ""},
		{"changes to a VIP that is gone", func(rt *runtimeState) { rt.backend("198.18.1.199:80/tcp", "198.18.0.21").Weight = u32(2) },
			func(t *testing.T, rt *runtimeState) {
				if len(rt.VIPs) != 0 {
					t.Errorf("kept %+v", rt.VIPs)
				}
			}, "the configuration no longer has it"},
		{"deletion of a VIP that is gone", func(rt *runtimeState) { rt.vip("198.18.1.199:80/tcp").Deleted = true },
			func(t *testing.T, rt *runtimeState) {
				if len(rt.VIPs) != 0 {
					t.Errorf("kept %+v", rt.VIPs)
				}
			}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntimeState()
			tt.change(rt)
			orig := rt.clone()
			got, dropped := pruneRuntime(cfg, rt)
			if !rt.equal(orig) {
				t.Error("pruneRuntime modified its input")
			}
			tt.check(t, got)
			joined := strings.Join(dropped, "\n")
			if tt.dropped == "" && joined != "" {
				t.Errorf("dropped %q, want nothing reported", joined)
			}
			if tt.dropped != "" && !strings.Contains(joined, tt.dropped) {
				t.Errorf("dropped %q, want it to say %q", joined, tt.dropped)
			}
		})
	}
}
