package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/producer"
)

func init() {
	register("dev", "run the producer and workers of every role in one process (a laptop mesh)", runDev)
}

// runDev runs a producer and a worker node (with maintenance) in one
// process, on one pair of backend connections. The producer's metrics are
// served on --addr/metrics, the worker's on --metrics-addr, as separate
// registries, so a Prometheus scraping both counts nothing twice.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf backendFlags
	var pf producerFlags
	var wf workerFlags
	bf.register(fs)
	pf.register(fs)
	wf.register(fs)
	metricsAddr := fs.String("metrics-addr", envOr("MESH_METRICS_ADDR", ":9091"),
		"serve the worker's Prometheus /metrics here; empty to disable (env MESH_METRICS_ADDR)")
	if err := applyEnv(fs, producerEnv); err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	wf.shutdown = pf.shutdown
	log, err := bf.logger(stderr)
	if err != nil {
		return err
	}
	wcfg, err := wf.config(log)
	if err != nil {
		return err
	}
	be, err := bf.open(ctx, log, 30*time.Second)
	if err != nil {
		return err
	}
	defer be.close()

	pcfg := pf.config(log)
	pcfg.Registry = metrics.NewRegistry()
	p, err := producer.New(be.queue, be.store, pcfg, nil)
	if err != nil {
		return err
	}
	wreg := metrics.NewRegistry()
	wm := metrics.NewWorker(wreg)
	if err := serveMetrics(ctx, log, *metricsAddr, wreg); err != nil {
		return err
	}
	// Stop order on the signal: the producer stops taking submissions while
	// the worker finishes what it holds; both share ctx.
	var wg sync.WaitGroup
	var perr, werr error
	wg.Add(2)
	go func() { defer wg.Done(); perr = p.Run(ctx) }()
	go func() { defer wg.Done(); werr = runWorkerNode(ctx, be, wcfg, &wf, wm, log) }()
	wg.Wait()
	return errors.Join(perr, werr)
}
