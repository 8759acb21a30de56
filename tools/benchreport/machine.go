package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Machine describes where and on what code the numbers were taken.
type Machine struct {
	CPU        string
	Cores      int
	GOMAXPROCS int
	GoVersion  string
	GOOS       string
	GOARCH     string
	Commit     string // short hash, "" when unknown
	Dirty      bool   // uncommitted changes in the working tree
	Date       time.Time
	LoadStart  string // /proc/loadavg's 1, 5 and 15 minute averages
	LoadEnd    string
}

func readMachine(ctx context.Context) Machine {
	m := Machine{
		CPU: cpuModel(), Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Date: time.Now().UTC(), LoadStart: readLoadAvg(),
	}
	m.Commit, m.Dirty = gitState(ctx)
	return m
}

func (m Machine) commitLabel() string {
	c := m.Commit
	if c == "" {
		return "unknown"
	}
	if m.Dirty {
		c += " (dirty)"
	}
	return c
}

// busy reports whether the 1-minute load average, at the start or the end,
// was at least half the core count: other work was competing for the CPU.
func (m Machine) busy() bool {
	for _, l := range []string{m.LoadStart, m.LoadEnd} {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil && v >= float64(m.Cores)/2 {
			return true
		}
	}
	return false
}

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown (" + runtime.GOARCH + ")"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown (" + runtime.GOARCH + ")"
}

// readLoadAvg returns "1m 5m 15m" from /proc/loadavg, or "unknown".
func readLoadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// gitState returns the short commit of the working tree and whether it has
// uncommitted changes. It falls back to the build info's VCS stamp when git
// is not available. --no-optional-locks keeps `git status` from writing the
// index, so it cannot collide with other git commands on the same tree.
func gitState(ctx context.Context) (commit string, dirty bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err == nil {
		commit = strings.TrimSpace(string(out))
		st, err := exec.CommandContext(ctx, "git", "--no-optional-locks", "status", "--porcelain").Output()
		dirty = err == nil && len(bytes.TrimSpace(st)) > 0
		return commit, dirty
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value[:min(len(s.Value), 7)]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	return commit, dirty
}

// resetPeakRSS asks Linux to reset VmHWM to the current RSS (writing 5 to
// clear_refs, Linux ≥ 4.0), after returning freed memory to the OS, so the
// next peakRSS belongs to the work done in between.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS returns VmHWM in bytes, 0 if unknown.
func peakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
