package recall

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	info        *prometheus.GaugeVec
	loadSeconds prometheus.Gauge
	loadedAt    prometheus.Gauge
	selfCheck   *prometheus.GaugeVec
	reloads     *prometheus.CounterVec
	fsync       prometheus.Histogram // the catalogue journal's group-commit fsyncs
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "towerrecall_model_info", Help: "The live model: 1 for its version and the index backend answering /recall.",
		}, []string{"version", "backend", "objective"}),
		loadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "towerrecall_model_load_seconds", Help: "Time the last successful model load took (indexes and self-check included).",
		}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "towerrecall_model_loaded_timestamp_seconds", Help: "Unix time of the last successful model load.",
		}),
		selfCheck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "towerrecall_index_self_check_recall", Help: "Recall@k of the HNSW index against exact search, measured at load.",
		}, []string{"k"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "towerrecall_model_loads_total", Help: "Model loads by result.",
		}, []string{"result"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "towerrecall_catalog_fsync_seconds", Help: "Time the catalogue journal's fsyncs take (one per group of concurrent changes).",
			Buckets: []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}, // round bounds, 1-2-5
		}),
	}
	// Both results exist from the start: a series that first appears at 1
	// is no increase to Prometheus, and an alert on refusals would miss
	// the first one.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.info, m.loadSeconds, m.loadedAt, m.selfCheck, m.reloads, m.fsync} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("recall: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeLoad(info ModelInfo, d time.Duration) {
	m.reloads.WithLabelValues("ok").Inc()
	m.info.Reset()
	m.info.WithLabelValues(info.Version, info.Backend, info.Objective).Set(1)
	m.loadSeconds.Set(d.Seconds())
	m.loadedAt.Set(float64(info.LoadedAt.Unix()))
	m.selfCheck.Reset()
	for k, r := range info.IndexRecall {
		m.selfCheck.WithLabelValues(k[len("recall@"):]).Set(r)
	}
}

// registerCatalog registers the catalogue's gauges, read from s at each
// scrape: whether changes can be made (0 after a journal failure, until a
// restart: worth an alert) and the live changes over the artifact.
func (s *Service) registerCatalog(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	count := func(pick func(CatalogInfo) int) func() float64 {
		return func() float64 {
			info, _ := s.Info()
			return float64(pick(info.Catalog))
		}
	}
	cs := []prometheus.Collector{writableCollector{s: s, desc: prometheus.NewDesc(
		"towerrecall_catalog_writable",
		"1 when catalogue changes can be made, 0 after a journal failure; no series while changes are off (no catalogue token).",
		nil, nil)}}
	for _, state := range []struct {
		name string
		pick func(CatalogInfo) int
	}{
		{"added", func(c CatalogInfo) int { return c.Added }},
		{"updated", func(c CatalogInfo) int { return c.Updated }},
		{"deleted", func(c CatalogInfo) int { return c.Deleted }},
	} {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "towerrecall_catalog_changed_movies", Help: "Movies changed over the live artifact without retraining, by state.",
			ConstLabels: prometheus.Labels{"state": state.name},
		}, count(state.pick)))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("recall: register metrics: %w", err)
		}
	}
	return nil
}

// writableCollector exports towerrecall_catalog_writable only while
// catalogue changes are on (a journal attached for writing): where they
// are off, 0 would read as a journal failure to the alert on it.
type writableCollector struct {
	s    *Service
	desc *prometheus.Desc
}

func (c writableCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c writableCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.s.journaled.Load() {
		return
	}
	v := 0.0
	if c.s.writable.Load() {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v)
}

// LoadFailed counts a load that was refused (bad artifact).
func (s *Service) LoadFailed() { s.metrics.reloads.WithLabelValues("error").Inc() }
