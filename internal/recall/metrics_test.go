package recall

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
)

// TestModelLoadsStartAtZero: both results of towerrecall_model_loads_total
// are exported from the start. A series that first appears at 1 is no
// increase to Prometheus (increase() and rate() need two samples), so an
// alert on refused reloads would miss a process's first refusal.
func TestModelLoadsStartAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	loads := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "towerrecall_model_loads_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
		return got
	}
	if got, want := loads(), map[string]float64{"ok": 0, "error": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("before any load: towerrecall_model_loads_total %v, want %v", got, want)
	}
	if err := s.Load(testBundle(t, "v1", 50, 23)); err != nil {
		t.Fatal(err)
	}
	if got, want := loads(), map[string]float64{"ok": 1, "error": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a load: towerrecall_model_loads_total %v, want %v", got, want)
	}
}

// TestModelRefusedGauge: towerrecall_model_refused is 1 from a refused
// load until a model loads, whoever refused it (Load itself, or serve
// through LoadFailed for an artifact that does not read). The refused
// artifact stays published that long, so an alert on the gauge lasts as
// long as the problem; one on increase() of the counter cleared an hour
// later with the artifact still there.
func TestModelRefusedGauge(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	refused := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "towerrecall_model_refused" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no towerrecall_model_refused")
		return 0
	}
	bad := testBundle(t, "v2", 50, 24)
	bad.Vectors = bad.Vectors[:len(bad.Vectors)-1] // a short vector file: Load refuses it
	steps := []struct {
		name string
		do   func()
		want float64
	}{
		{"at start", func() {}, 0},
		{"an artifact serve could not read", s.LoadFailed, 1},
		{"a load", func() { _ = s.Load(testBundle(t, "v1", 50, 23)) }, 0},
		{"a load refused, v1 serving", func() { _ = s.Load(bad) }, 1},
		{"v1 loaded again", func() { _ = s.Load(testBundle(t, "v1", 50, 23)) }, 0},
	}
	for _, st := range steps {
		st.do()
		if got := refused(); got != st.want {
			t.Errorf("after %s: towerrecall_model_refused %v, want %v", st.name, got, st.want)
		}
	}
}

// TestCatalogWritableOnlyWithWrites: towerrecall_catalog_writable exists
// only where catalogue changes are turned on (a journal attached for
// writing), so that the documented alert (writable == 0: a journal
// failure) does not fire forever on every replica without a catalogue
// token, the production default.
func TestCatalogWritableOnlyWithWrites(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(testBundle(t, "v1", 50, 23)); err != nil {
		t.Fatal(err)
	}
	writable := func() []float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for _, mf := range mfs {
			if mf.GetName() == "towerrecall_catalog_writable" {
				for _, m := range mf.GetMetric() {
					got = append(got, m.GetGauge().GetValue())
				}
			}
		}
		return got
	}
	if got := writable(); got != nil {
		t.Errorf("no journal: towerrecall_catalog_writable %v, want no series", got)
	}
	s.AttachJournal(nil, nil) // a replica without a token applies its journal read-only
	if got := writable(); got != nil {
		t.Errorf("read-only journal: towerrecall_catalog_writable %v, want no series", got)
	}
	s.AttachJournal(&memJournal{}, nil)
	if got := writable(); !reflect.DeepEqual(got, []float64{1}) {
		t.Errorf("writable journal: towerrecall_catalog_writable %v, want [1]", got)
	}
}

// TestModelInfoNeverMissing: towerrecall_model_info and the self-check
// recall keep a series through every reload. They were reset and then set,
// so a scrape between the two saw no live model (an alert on
// absent(towerrecall_model_info) fired on a healthy reload).
func TestModelInfoNeverMissing(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	bundles := []*artifact.Bundle{testBundle(t, "v1", 50, 23), testBundle(t, "v2", 50, 23)}
	if err := s.Load(bundles[0]); err != nil {
		t.Fatal(err)
	}
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Error(err)
			return -1
		}
		for _, mf := range mfs {
			if mf.GetName() == "towerrecall_model_info" {
				return len(mf.GetMetric())
			}
		}
		return 0
	}
	done := make(chan struct{})
	var wrong, scrapes int
	go func() {
		defer close(done)
		for i := range 400 {
			if err := s.Load(bundles[(i+1)%2]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if n := series(); n != 1 {
			wrong++
		}
		scrapes++
	}
	if wrong > 0 {
		t.Errorf("%d of %d scrapes during reloads saw %s series of towerrecall_model_info, want 1", wrong, scrapes, "not exactly one")
	}
}
