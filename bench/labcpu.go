package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/controlplane/lab"
	"github.com/xdplb/xdplb/controlplane/lab/labnet"
)

// labProcs are the processes of a lab, by role, and the benchmark's own,
// which runs the lab's HTTP client.
type labProcs struct {
	self      int
	backends  []int
	directors []int
}

// findLabProcs lists the processes in l's backend and director namespaces.
func findLabProcs(l *lab.Lab) (labProcs, error) {
	p := labProcs{self: os.Getpid()}
	for _, b := range l.Backends {
		pids, err := labnet.Pids(b.Host.Name)
		if err != nil {
			return p, err
		}
		p.backends = append(p.backends, pids...)
	}
	for _, d := range l.Directors {
		pids, err := labnet.Pids(d.Host.Name)
		if err != nil {
			return p, err
		}
		p.directors = append(p.directors, pids...)
	}
	if len(p.backends) == 0 || len(p.directors) == 0 {
		return p, fmt.Errorf("lab processes: found %d backend and %d director processes", len(p.backends), len(p.directors))
	}
	return p, nil
}

// pin runs the benchmark process on the first CPU it may use and the lab's
// processes on the others. restore gives the benchmark process its CPUs
// back; the lab's processes end with the lab.
func (p labProcs) pin() (restore func() error, err error) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return nil, fmt.Errorf("pin lab: %w", err)
	}
	var client, rest unix.CPUSet
	for c := range len(orig) * 64 {
		switch {
		case !orig.IsSet(c):
		case client.Count() == 0:
			client.Set(c)
		default:
			rest.Set(c)
		}
	}
	if rest.Count() == 0 {
		return nil, errors.New("pin lab: one CPU only")
	}
	restore = func() error { return setProcAffinity(p.self, &orig) }
	if err := setProcAffinity(p.self, &client); err != nil {
		return nil, errors.Join(err, restore())
	}
	for _, pid := range append(append([]int(nil), p.backends...), p.directors...) {
		if err := setProcAffinity(pid, &rest); err != nil {
			return nil, errors.Join(err, restore())
		}
	}
	return restore, nil
}

// setProcAffinity sets the CPUs of every thread of pid. Threads started
// later inherit the mask of the thread that starts them.
func setProcAffinity(pid int, set *unix.CPUSet) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("set CPUs of thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}

// labCPUSample is CPU time used so far, in USER_HZ ticks.
type labCPUSample struct {
	at                          time.Time
	client, backends, directors uint64
	cpus                        []cpuTimes
}

// sample reads the CPU time of every process of p and of every CPU.
func (p labProcs) sample() (labCPUSample, error) {
	s := labCPUSample{at: time.Now()}
	var err error
	if s.cpus, err = samplePerCPU(); err != nil {
		return s, err
	}
	sum := func(pids []int) (uint64, error) {
		var n uint64
		for _, pid := range pids {
			t, err := procTicks(pid)
			if err != nil {
				return 0, err
			}
			n += t
		}
		return n, nil
	}
	if s.client, err = sum([]int{p.self}); err != nil {
		return s, err
	}
	if s.backends, err = sum(p.backends); err != nil {
		return s, err
	}
	if s.directors, err = sum(p.directors); err != nil {
		return s, err
	}
	return s, nil
}

// labCPU is CPUs busy over an interval, by who.
type labCPU struct {
	busy, client, backends, directors, softirq float64
}

// since returns the CPUs busy between a and s.
func (s labCPUSample) since(a labCPUSample) labCPU {
	secs := s.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return labCPU{}
	}
	cpus := func(ticks uint64) float64 { return float64(ticks) / userHZ / secs }
	c := labCPU{
		client:    cpus(s.client - a.client),
		backends:  cpus(s.backends - a.backends),
		directors: cpus(s.directors - a.directors),
	}
	for i := range min(len(a.cpus), len(s.cpus)) {
		d := s.cpus[i].sub(a.cpus[i])
		c.busy += cpus(d.busy)
		c.softirq += cpus(d.softirq)
	}
	return c
}

// weigh returns the CPUs busy over two intervals, c over a seconds and o
// over b seconds.
func (c labCPU) weigh(a float64, o labCPU, b float64) labCPU {
	if a+b <= 0 {
		return labCPU{}
	}
	w := func(x, y float64) float64 { return (x*a + y*b) / (a + b) }
	return labCPU{
		busy:      w(c.busy, o.busy),
		client:    w(c.client, o.client),
		backends:  w(c.backends, o.backends),
		directors: w(c.directors, o.directors),
		softirq:   w(c.softirq, o.softirq),
	}
}

// metrics returns c under the lab section's metric keys.
func (c labCPU) metrics() map[string]float64 {
	return map[string]float64{
		"busy_cpus":     c.busy,
		"client_cpus":   c.client,
		"backend_cpus":  c.backends,
		"director_cpus": c.directors,
		"softirq_cpus":  c.softirq,
	}
}

// procTicks returns the user and system time of process pid, its threads
// (those ended included), in USER_HZ ticks.
func procTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
	}
	return parseProcTicks(string(b))
}

// parseProcTicks reads utime and stime from the text of /proc/PID/stat.
func parseProcTicks(stat string) (uint64, error) {
	// The command name, in parentheses, may hold spaces and parentheses.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/PID/stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// Fields after the name start at state (3rd); utime and stime are
	// the 14th and 15th.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/PID/stat: %d fields after the name, want at least 13", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/PID/stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/PID/stat stime: %w", err)
	}
	return u + st, nil
}
