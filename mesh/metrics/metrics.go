// Package metrics holds the Prometheus collectors of Agent Mesh's processes.
// Nothing registers globally: each constructor takes the Registerer to use
// (client_golang's advice for libraries), and every method is safe on a nil
// receiver so tests and embedders can run components without metrics.
// Metric names and labels are listed in docs/contracts.md and the README.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric of the mesh.
const Namespace = "agentmesh"

// LatencyBuckets are the classic buckets (seconds) of every latency
// histogram: 250 µs to 60 s. Native buckets are exposed as well for
// Prometheus servers that ask for them.
var LatencyBuckets = []float64{
	0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// NewRegistry returns a registry holding the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// latencyOpts is a histogram with the classic LatencyBuckets plus native buckets.
func latencyOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: Namespace, Name: name, Help: help,
		Buckets:                         LatencyBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: 0,
	}
}
