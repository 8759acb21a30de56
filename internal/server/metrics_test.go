package server

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue reads a counter without the testutil package.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestMetricsObserveConcurrent: concurrent observations, some of label sets
// seen for the first time, are all counted once, under their own labels.
func TestMetricsObserveConcurrent(t *testing.T) {
	t.Parallel()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	routes := []string{"/recall", "/score", "/model", "unmatched"}
	statuses := []int{200, 400, 404, 503}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				m.observe(routes[(g+i)%len(routes)], "POST", statuses[i%len(statuses)], time.Microsecond)
			}
		})
	}
	wg.Wait()
	total := 0.0
	for _, r := range routes {
		for _, st := range []string{"200", "400", "404", "503"} {
			total += counterValue(t, m.requests.WithLabelValues(r, "POST", st))
		}
	}
	if total != 8000 {
		t.Errorf("%v requests counted, want 8000", total)
	}
	if n := len(*m.series.Load()); n != len(routes)*len(statuses) {
		t.Errorf("%d cached label sets, want %d", n, len(routes)*len(statuses))
	}
	ch := make(chan prometheus.Metric, 64)
	m.duration.Collect(ch)
	close(ch)
	if got := len(ch); got != len(routes) {
		t.Errorf("%d duration series, want %d", got, len(routes))
	}
}
