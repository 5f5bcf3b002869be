// Command promconfig writes a Prometheus configuration for a mesh running on
// this machine (the compose stack has its own, deploy/prometheus/prometheus.yml):
//
//	go run ./deploy/promconfig -producer 127.0.0.1:8080 -worker 127.0.0.1:9091 \
//	    -loadgen 127.0.0.1:9092 > .task/prometheus.yml
//	prometheus --config.file=.task/prometheus.yml --storage.tsdb.path=.task/prom
//
// Each target flag takes a comma-separated list of host:port.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/agentmesh/agentmesh/deploy"
)

func main() {
	var producer, worker, loadgen string
	var s deploy.LocalScrape
	flag.StringVar(&producer, "producer", "127.0.0.1:8080", "producer HTTP addresses (comma-separated)")
	flag.StringVar(&worker, "worker", "127.0.0.1:9091", "worker --metrics-addr addresses (comma-separated)")
	flag.StringVar(&loadgen, "loadgen", "127.0.0.1:9092", "loadgen --metrics-addr addresses (comma-separated)")
	flag.DurationVar(&s.ScrapeInterval, "interval", deploy.DefaultScrapeInterval, "scrape interval")
	flag.Parse()
	s.Producer, s.Worker, s.Loadgen = list(producer), list(worker), list(loadgen)
	out, err := deploy.LocalPrometheus(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "promconfig:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(out)
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
