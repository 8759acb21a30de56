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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.info, m.loadSeconds, m.loadedAt, m.selfCheck, m.reloads} {
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

// LoadFailed counts a load that was refused (bad artifact).
func (s *Service) LoadFailed() { s.metrics.reloads.WithLabelValues("error").Inc() }
