package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample returns the metric of family name whose labels are exactly
// labels (name, value, name, value…), from what g gathers now; nil when
// there is none.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("labels of %s: odd count %d", name, len(labels))
	}
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}

	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m
			}
		}
	}

	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	if len(m.GetLabel()) != len(labels)/2 {
		return false
	}
	want := map[string]string{}
	for i := 0; i < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}

	return true
}

// counter returns the value of a counter, 0 when it has no sample yet.
func counter(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()

	return sample(t, m.reg, name, labels...).GetCounter().GetValue()
}

// gauge returns the value of a gauge, failing when it is missing.
func gauge(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	s := sample(t, m.reg, name)
	if s == nil {
		t.Fatalf("gauge %s missing", name)
	}

	return s.GetGauge().GetValue()
}

// histogram returns a histogram's data, failing when it is missing.
func histogram(t *testing.T, m *Metrics, name string, labels ...string) *dto.Histogram {
	t.Helper()
	s := sample(t, m.reg, name, labels...)
	if s == nil {
		t.Fatalf("histogram %s %v missing", name, labels)
	}

	return s.GetHistogram()
}
