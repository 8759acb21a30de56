package recall

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	loadSeconds prometheus.Gauge
	loadedAt    prometheus.Gauge
	reloads     *prometheus.CounterVec
	refused     prometheus.Gauge     // 1 from a refused load until a model loads
	fsync       prometheus.Histogram // the catalogue journal's group-commit fsyncs
}

func newMetrics() *metrics {
	m := &metrics{
		loadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "towerrecall_model_load_seconds", Help: "Time the last successful model load took (indexes and self-check included).",
		}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "towerrecall_model_loaded_timestamp_seconds", Help: "Unix time of the last successful model load.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "towerrecall_model_loads_total", Help: "Model loads by result.",
		}, []string{"result"}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "towerrecall_model_refused",
			Help: "1 while the last model load was refused (a bad artifact published; the previous model, or none, serves), 0 once one loads.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "towerrecall_catalog_fsync_seconds", Help: "Time the catalogue journal's fsyncs take (one per group of concurrent changes; one that compacts the journal includes the rewrite).",
			Buckets: []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}, // round bounds, 1-2-5
		}),
	}
	// Both results exist from the start: a series that first appears at 1
	// is no increase to Prometheus, and an alert on refusals would miss
	// the first one.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	return m
}

func (m *metrics) observeLoad(info ModelInfo, d time.Duration) {
	m.reloads.WithLabelValues("ok").Inc()
	m.refused.Set(0)
	m.loadSeconds.Set(d.Seconds())
	m.loadedAt.Set(float64(info.LoadedAt.Unix()))
}

// register registers s's metrics, the gauges read from s at each scrape
// (see liveCollector) last; a nil reg registers nothing.
func (s *Service) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	live := liveCollector{s: s,
		info: prometheus.NewDesc("towerrecall_model_info", "The live model: 1 for its version and the index backend answering /recall.",
			[]string{"version", "backend", "objective"}, nil),
		selfCheck: prometheus.NewDesc("towerrecall_index_self_check_recall", "Recall@k of the HNSW index against exact search, measured at load.",
			[]string{"k"}, nil),
		writable: prometheus.NewDesc("towerrecall_catalog_writable",
			"1 when catalogue changes can be made, 0 after a journal failure; no series while changes are off (no catalogue token).",
			nil, nil),
		changed: prometheus.NewDesc("towerrecall_catalog_changed_movies", "Movies changed over the live artifact without retraining, by state.",
			[]string{"state"}, nil),
	}
	m := s.metrics
	for _, c := range []prometheus.Collector{m.loadSeconds, m.loadedAt, m.reloads, m.refused, m.fsync, live} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("recall: register metrics: %w", err)
		}
	}
	return nil
}

// liveCollector exports the gauges read from s's live model at each
// scrape, all from one Info: the model's info and index self-check (one
// series per model, so that a scrape during a reload sees the old model or
// the new, never neither or both), the live changes over the artifact and
// whether catalogue changes can be made (0 after a journal failure, until
// a restart: worth an alert). That last one exists only while changes are
// on (a journal attached for writing): where they are off, 0 would read as
// a journal failure to the alert on it.
type liveCollector struct {
	s                                  *Service
	info, selfCheck, writable, changed *prometheus.Desc
}

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.info
	ch <- c.selfCheck
	ch <- c.writable
	ch <- c.changed
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	info, loaded := c.s.Info()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.changed, float64(info.Catalog.Added), "added")
	gauge(c.changed, float64(info.Catalog.Updated), "updated")
	gauge(c.changed, float64(info.Catalog.Deleted), "deleted")
	if c.s.journaled.Load() {
		writable := 0.0
		if c.s.writable.Load() { // not info's: Info has none before a load
			writable = 1
		}
		gauge(c.writable, writable)
	}
	if !loaded {
		return
	}
	gauge(c.info, 1, info.Version, info.Backend, info.Objective)
	for k, r := range info.IndexRecall {
		gauge(c.selfCheck, r, k[len("recall@"):])
	}
}

// LoadFailed counts a load that was refused (bad artifact), which
// towerrecall_model_refused shows until a model loads: the refused
// artifact stays published that long, whatever serves meanwhile.
func (s *Service) LoadFailed() {
	s.metrics.reloads.WithLabelValues("error").Inc()
	s.metrics.refused.Set(1)
}
