package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func load(t *testing.T, file string) *Config {
	t.Helper()
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiff(t *testing.T) {
	issue3 := load(t, "testdata/issue3.yaml")
	data, err := os.ReadFile("testdata/issue3-issue4.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(data)

	for _, tc := range []struct {
		name     string
		old, new *Config
		want     Changes
		summary  string
	}{
		{
			name: "start-up", old: nil, new: parse(t, base),
			want: Changes{
				Director:  []string{"interface", "source_address", "metrics_listen", "api_socket", "state_dir", "pin_root", "xdp_mode", "log_format", "log_level", "max_vips", "max_backends", "max_flows", "ring_size", "hash_seed"},
				Services:  SetChanges{Added: []string{"web", "mysql-write"}},
				Instances: SetChanges{Added: []string{"VI_1"}},
			},
			summary: "director: ~interface,source_address,metrics_listen,api_socket,state_dir,pin_root,xdp_mode,log_format,log_level,max_vips,max_backends,max_flows,ring_size,hash_seed; services: +web +mysql-write; instances: +VI_1",
		},
		{
			name: "same file", old: parse(t, base), new: parse(t, base),
			want: Changes{}, summary: "no changes",
		},
		{
			name: "comments and defaults written out change nothing", old: issue3,
			new:  parse(t, strings.ReplaceAll(issue3.String(), "# default", "# was a default")),
			want: Changes{}, summary: "no changes",
		},
		{
			name: "backends reordered", old: issue3,
			new: parse(t, edit(string(mustRead(t, "testdata/issue3.yaml")),
				"      - address: 198.18.0.21\n      - address: 198.18.0.22\n        weight: 2\n",
				"      - address: 198.18.0.22\n        weight: 2\n      - address: 198.18.0.21\n")),
			want: Changes{}, summary: "no changes",
		},
		{
			name: "vrrp added", old: issue3, new: parse(t, base),
			want:    Changes{Instances: SetChanges{Added: []string{"VI_1"}}},
			summary: "instances: +VI_1",
		},
		{
			name: "vrrp removed", old: parse(t, base), new: issue3,
			want:    Changes{Instances: SetChanges{Removed: []string{"VI_1"}}},
			summary: "instances: -VI_1",
		},
		{
			name: "weight, check and log level changed, one service removed, one added", old: parse(t, base),
			new: parse(t, edit(edit(edit(edit(base,
				"  metrics_listen: 127.0.0.1:9469\n", "  metrics_listen: 127.0.0.1:9469\n  log_level: debug\n"),
				"        weight: 2\n", "        weight: 3\n"),
				"      timeout: 500ms\n", "      timeout: 400ms\n"),
				"  - name: mysql-write\n    vip: 198.18.1.101\n", "  - name: mysql-read\n    vip: 198.18.1.102\n")),
			want: Changes{
				Director: []string{"log_level"},
				Services: SetChanges{
					Added:   []string{"mysql-read"},
					Removed: []string{"mysql-write"},
					Changed: []Change{{Name: "web", Fields: []string{"backends", "health_check"}}},
				},
			},
			summary: "director: ~log_level; services: +mysql-read -mysql-write ~web(backends,health_check)",
		},
		{
			name: "instance priority and sync group", old: parse(t, base),
			new: parse(t, edit(base, "      priority: 150\n", "      priority: 90\n")+
				"  sync_groups:\n    - {name: G1, instances: [VI_1]}\n"),
			want: Changes{
				Instances:  SetChanges{Changed: []Change{{Name: "VI_1", Fields: []string{"priority"}}}},
				SyncGroups: SetChanges{Added: []string{"G1"}},
			},
			summary: "instances: ~VI_1(priority); sync_groups: +G1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.old, tc.new)
			if !reflect.DeepEqual(tc.want, got) {
				t.Errorf("Diff:\nwant %+v\n got %+v", tc.want, got)
			}
			if got.Empty() != (tc.summary == "no changes") {
				t.Errorf("Empty() = %v for %+v", got.Empty(), got)
			}
			if s := got.String(); s != tc.summary {
				t.Errorf("String():\nwant %s\n got %s", tc.summary, s)
			}
		})
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
