// Package metrics builds the Prometheus registry that each visitrelay
// binary serves at /metrics. Each process gets a registry of its own, never
// the global default one, so that a test process running a gateway and an
// appliance side by side reports each one's figures apart.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/visitrelay/visitrelay/internal/version"
)

// Namespace prefixes every visitrelay metric name.
const Namespace = "visitrelay"

// NewRegistry returns a registry with the Go runtime and process metrics
// and visitrelay_build_info for binary ("gateway" or "appliance").
func NewRegistry(binary string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   Namespace,
			Name:        "build_info",
			Help:        "Always 1; the labels name the binary, its version and the Go version it was built with.",
			ConstLabels: prometheus.Labels{"binary": binary, "version": version.String(), "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// Handler serves reg in the Prometheus text format, or in OpenMetrics when
// the scraper requests it.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg})
}

// Gauge returns a constant gauge sample for a custom collector.
func Gauge(desc *prometheus.Desc, value float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...)
}

// Counter returns a constant counter sample for a custom collector.
func Counter(desc *prometheus.Desc, value float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, value, labels...)
}

// Desc describes a visitrelay metric with the namespace prefix.
func Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}
