package main

import (
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestProducerServerTimeouts: the HTTP server timeouts come from their
// flags, each falling back to its environment variable; the command line
// wins over the environment.
func TestProducerServerTimeouts(t *testing.T) {
	t.Setenv("MESH_READ_HEADER_TIMEOUT", "2s")
	t.Setenv("MESH_IDLE_TIMEOUT", "9s")
	fs := flag.NewFlagSet("mesh producer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var pf producerFlags
	pf.register(fs)
	if err := applyEnv(fs, producerEnv); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--idle-timeout", "7s", "--write-timeout", "3s"}); err != nil {
		t.Fatal(err)
	}
	cfg := pf.config(slog.New(slog.NewTextHandler(io.Discard, nil)))
	got := []time.Duration{cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout}
	want := []time.Duration{2 * time.Second, 30 * time.Second, 3 * time.Second, 7 * time.Second}
	for i, name := range []string{"read header", "read", "write", "idle"} {
		if got[i] != want[i] {
			t.Errorf("%s timeout %s, want %s", name, got[i], want[i])
		}
	}
}
