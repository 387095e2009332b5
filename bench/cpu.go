package main

import (
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
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return cpuSample{}, fmt.Errorf("parse /proc/stat: %w", err)
		}
	}
	// user nice system idle iowait irq softirq steal
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
