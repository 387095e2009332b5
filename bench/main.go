package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

// sections lists every section in report order.
func sections() []Section {
	return []Section{testRunSection{}, liveSection{}, maglevSection{}, controlPlaneSection{}, failoverSection{}, labSection{}, labPPSSection{}}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs the selected sections and writes the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "write the report as JSON (schema "+Schema+")")
	jsonFile := fs.String("json-file", "", "also write the JSON report to this file")
	sectionList := fs.String("sections", "dataplane,live", "sections to run, comma-separated, or all: "+strings.Join(sectionNames(), ", "))
	caseList := fs.String("cases", "", "cases to run, comma-separated globs on names such as dr/100/new; a glob without / matches any part (new, tun, 1000); references always run")
	repeat := fs.Uint("repeat", 1<<19, "runs per BPF_PROG_TEST_RUN")
	rounds := fs.Int("rounds", 11, "measurements per figure; the median is reported")
	attempts := fs.Int("attempts", 4, "tries per measurement while the floor around it moves or the veth loses frames; the last is kept")
	flows := fs.Uint("flows", 16384, "established flows the est-many cases cycle through")
	liveRepeat := fs.Uint("live-repeat", 1<<18, "frames per live-frames run")
	liveRounds := fs.Int("live-rounds", 5, "live measurements per figure")
	liveBatch := fs.Uint("live-batch", 64, "live-frames batch size (1..256)")
	verbose := fs.Bool("v", false, "log progress to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark process to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := Config{
		Repeat:     uint32(*repeat),
		Rounds:     *rounds,
		Attempts:   *attempts,
		Flows:      uint32(*flows),
		LiveRepeat: uint32(*liveRepeat),
		LiveRounds: *liveRounds,
		LiveBatch:  uint32(*liveBatch),
	}
	if *caseList != "" {
		cfg.Cases = strings.Split(*caseList, ",")
	}
	switch {
	case cfg.Repeat == 0 || uint(cfg.Repeat) != *repeat:
		return fmt.Errorf("--repeat %d: want 1..%d", *repeat, uint32(1<<32-1))
	case cfg.Rounds < 1:
		return fmt.Errorf("--rounds %d: want at least 1", cfg.Rounds)
	case cfg.Attempts < 1:
		return fmt.Errorf("--attempts %d: want at least 1", cfg.Attempts)
	case cfg.Flows < 2 || cfg.Flows > 32768:
		return fmt.Errorf("--flows %d: want 2..32768 (half the default flow table at most)", *flows)
	case cfg.LiveRepeat == 0 || uint(cfg.LiveRepeat) != *liveRepeat:
		return fmt.Errorf("--live-repeat %d: want 1..%d", *liveRepeat, uint32(1<<32-1))
	case cfg.LiveRounds < 1:
		return fmt.Errorf("--live-rounds %d: want at least 1", cfg.LiveRounds)
	case cfg.LiveBatch == 0 || cfg.LiveBatch > 256:
		return fmt.Errorf("--live-batch %d: want 1..256", *liveBatch)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	want := map[string]bool{}
	for _, s := range strings.Split(*sectionList, ",") {
		if s = strings.TrimSpace(s); s == "all" {
			for _, name := range sectionNames() {
				want[name] = true
			}
			continue
		}
		want[s] = true
	}
	var selected []Section
	for _, s := range sections() {
		if want[s.Name()] {
			selected = append(selected, s)
			delete(want, s.Name())
		}
	}
	for name := range want {
		return fmt.Errorf("--sections: unknown section %q", name)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	rep := Report{Schema: Schema, Machine: machine(), Config: cfg}
	var failed error
	for _, s := range selected {
		sr, err := s.Run(ctx, cfg, log.With("section", s.Name()))
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("section %s: %w", s.Name(), err))
			continue
		}
		rep.Sections = append(rep.Sections, sr)
	}
	var werr error
	if *asJSON {
		werr = writeJSON(stdout, rep)
	} else {
		werr = writeTable(stdout, rep)
	}
	if *jsonFile != "" {
		werr = errors.Join(werr, writeJSONFile(*jsonFile, rep))
	}
	return errors.Join(failed, werr)
}

// sectionNames returns the names of every section, in report order.
func sectionNames() []string {
	var names []string
	for _, s := range sections() {
		names = append(names, s.Name())
	}
	return names
}

// writeJSONFile writes the JSON report to path.
func writeJSONFile(path string, rep Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("json file: %w", err)
	}
	if err := writeJSON(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("json file: %w", err)
	}
	return nil
}

// machine describes the host the figures come from.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func utsString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
