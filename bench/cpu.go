package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux
// architecture xdplb runs on).
const userHZ = 100

// cpuSample is a snapshot of CPU time: the calling thread's (getrusage
// RUSAGE_THREAD) and the whole machine's (/proc/stat).
type cpuSample struct {
	at     time.Time
	thread time.Duration // user + system time of the calling thread
	busy   uint64        // all CPUs, jiffies not idle
}

// sampleCPU takes a snapshot; call it on the thread that does the work.
func sampleCPU() (cpuSample, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return cpuSample{}, fmt.Errorf("getrusage: %w", err)
	}
	s := cpuSample{
		at:     time.Now(),
		thread: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuSample{}, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	v, err := statFields(f)
	if err != nil {
		return cpuSample{}, err
	}
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return s, nil
}

// cpuUse returns, between two samples around n packets, the CPU time the
// thread spent per packet in ns, and the number of CPUs busy on the whole
// machine (other work included).
func cpuUse(a, b cpuSample, n uint64) (threadNs, busyCPUs float64) {
	if n > 0 {
		threadNs = float64((b.thread - a.thread).Nanoseconds()) / float64(n)
	}
	if wall := b.at.Sub(a.at).Seconds(); wall > 0 {
		busyCPUs = float64(b.busy-a.busy) / userHZ / wall
	}
	return threadNs, busyCPUs
}

// statFields parses the first eight counters of a /proc/stat cpu line
// split into fields (the name first): user nice system idle iowait irq
// softirq steal, in USER_HZ ticks.
func statFields(f []string) ([8]uint64, error) {
	var v [8]uint64
	if len(f) < 9 {
		return v, fmt.Errorf("parse /proc/stat: short line %q", strings.Join(f, " "))
	}
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return v, fmt.Errorf("parse /proc/stat: %w", err)
		}
		v[i] = n
	}
	return v, nil
}

// cpuTimes is one CPU's line of /proc/stat, in USER_HZ ticks.
type cpuTimes struct {
	busy, softirq, total uint64
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{busy: a.busy - b.busy, softirq: a.softirq - b.softirq, total: a.total - b.total}
}

// samplePerCPU reads every cpuN line of /proc/stat, indexed by N.
func samplePerCPU() ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parsePerCPU(string(b))
}

// parsePerCPU parses the cpuN lines of a /proc/stat text.
func parsePerCPU(text string) ([]cpuTimes, error) {
	var out []cpuTimes
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n > 4096 {
			return nil, fmt.Errorf("parse /proc/stat: bad line %q", line)
		}
		v, err := statFields(f)
		if err != nil {
			return nil, err
		}
		for len(out) <= n {
			out = append(out, cpuTimes{})
		}
		out[n] = cpuTimes{
			busy:    v[0] + v[1] + v[2] + v[5] + v[6], // steal is another guest's
			softirq: v[6],
			total:   v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7],
		}
	}
	if len(out) == 0 {
		return nil, errors.New("parse /proc/stat: no cpuN line")
	}
	return out, nil
}
