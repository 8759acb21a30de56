package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP layer's own series; the serving core registers its
// model metrics on the same registry.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	items    prometheus.Histogram
	shed     *prometheus.CounterVec
	// batchTimeouts counts /recall/batch entries cut off by the request
	// deadline in a batch answered 200 (its other entries answered): no
	// status code shows them.
	batchTimeouts prometheus.Counter
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
			// 10µs .. 10s in 1-2-5 steps: a recall answered from the exact
			// index takes tens of microseconds, a request cut off by the
			// read or request timeout seconds. Round bounds, so that a
			// query on le="0.1" finds its series.
			Buckets: []float64{10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10},
		}, []string{"route", "method"}),
		items: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "towerrecall_recall_items",
			Help:    "Number of items per /recall answer (each answered /recall/batch entry is one).",
			Buckets: []float64{0, 1, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "towerrecall_http_shed_total",
			Help: "Requests answered 503 overloaded (their answer items would pass serve.max_items_in_flight, or their bodies serve.max_body_bytes_in_flight), by route pattern.",
		}, []string{"route"}),
		batchTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "towerrecall_batch_entries_timed_out_total",
			Help: "/recall/batch entries answered with a 504 timeout problem inside a 200 batch (a batch with no entry answered is a 504 in towerrecall_http_requests_total).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.items, m.shed, m.batchTimeouts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}
