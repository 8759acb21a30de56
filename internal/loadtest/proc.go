package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS returns the resident set size of process pid in bytes, from
// /proc/PID/status (Linux only).
func RSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return parseVmRSS(raw)
}

func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("loadtest: VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("loadtest: no VmRSS in /proc status")
}

// Gauge scrapes the value of an unlabelled metric (such as go_goroutines)
// from a Prometheus text endpoint.
func Gauge(ctx context.Context, client *http.Client, metricsURL, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("loadtest: scrape: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("loadtest: scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadtest: scrape: status %d", resp.StatusCode)
	}
	return parseGauge(raw, name)
}

func parseGauge(text []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: metric %s: %w", name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("loadtest: metric %s not found", name)
}

// Sample is one measurement At a time since the start of a run.
type Sample struct {
	At    time.Duration
	Value float64
}

// Flat checks that samples do not grow after from: every sample at or
// after from is at most ratio × the first such sample + slack. It returns
// an error naming the worst sample, or nil. Fewer than two samples after
// from is an error: there is nothing to judge.
func Flat(name string, samples []Sample, from time.Duration, ratio, slack float64) error {
	var base *Sample
	worst := Sample{Value: -1}
	n := 0
	for i := range samples {
		s := samples[i]
		if s.At < from {
			continue
		}
		n++
		if base == nil {
			base = &samples[i]
		}
		if s.Value > worst.Value {
			worst = s
		}
	}
	if n < 2 {
		return fmt.Errorf("%s: %d samples at or after %v, need 2", name, n, from)
	}
	if limit := ratio*base.Value + slack; worst.Value > limit {
		return fmt.Errorf("%s grows: %.0f at %v, above %.2f × %.0f (at %v) + %.0f = %.0f",
			name, worst.Value, worst.At.Round(time.Second), ratio, base.Value, base.At.Round(time.Second), slack, limit)
	}
	return nil
}

// CPUTime returns the user plus system CPU time process pid has used, from
// /proc/PID/stat (Linux only; 10 ms resolution, USER_HZ is 100).
func CPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return parseStatCPU(raw)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat.
// The command name (field 2) is parenthesised and may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadtest: /proc stat without a command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("loadtest: /proc stat has %d fields after the command name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("loadtest: /proc stat CPU field %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
