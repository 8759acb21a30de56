package server

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP layer's own series; the serving core registers its
// model metrics on the same registry.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	items    prometheus.Histogram

	// series caches the children of requests and duration per label set,
	// as client_golang advises for hot paths: WithLabelValues hashes the
	// values and takes a read lock on every call. The cache is an immutable
	// map behind an atomic pointer, so a lookup writes no shared memory
	// (under load a read lock's counter bounces between cores); a new label
	// set copies it. Routes, methods and statuses are bounded (route
	// patterns, methodLabel, HTTP codes), so are the copies.
	mu     sync.Mutex // serialises adding a label set
	series atomic.Pointer[map[seriesKey]seriesPair]
}

type seriesKey struct {
	route, method string
	status        int
}

type seriesPair struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "towerrecall_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "towerrecall_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern and method.",
			// 10µs .. 1s in 16 steps of about ×2.15: a recall answered from
			// the exact index takes tens of microseconds.
			Buckets: prometheus.ExponentialBucketsRange(10e-6, 1, 16),
		}, []string{"route", "method"}),
		items: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "towerrecall_recall_items",
			Help:    "Number of items in /recall responses.",
			Buckets: []float64{0, 1, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
	}
	m.series.Store(&map[seriesKey]seriesPair{})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.items} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(route, method string, status int, elapsed time.Duration) {
	key := seriesKey{route, method, status}
	p, ok := (*m.series.Load())[key]
	if !ok {
		p = m.add(key)
	}
	p.requests.Inc()
	p.duration.Observe(elapsed.Seconds())
}

// add caches the children for key, copying the map.
func (m *metrics) add(key seriesKey) seriesPair {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if p, ok := old[key]; ok {
		return p
	}
	p := seriesPair{
		requests: m.requests.WithLabelValues(key.route, key.method, strconv.Itoa(key.status)),
		duration: m.duration.WithLabelValues(key.route, key.method),
	}
	next := make(map[seriesKey]seriesPair, len(old)+1)
	maps.Copy(next, old)
	next[key] = p
	m.series.Store(&next)
	return p
}
