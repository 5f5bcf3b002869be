package deploy

import (
	"strings"
	"testing"
	"time"
)

func TestLocalPrometheus(t *testing.T) {
	t.Parallel()
	out, err := LocalPrometheus(LocalScrape{
		Producer: []string{"127.0.0.1:8080"},
		Worker:   []string{"127.0.0.1:9091", "127.0.0.1:9093"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"scrape_interval: 1s",   // the default
		"scrape_timeout: 800ms", // under the interval
		`job_name: "producer"`,  // the dashboards' job names
		`targets: ["127.0.0.1:9091", "127.0.0.1:9093"]`,
		"job_name: \"loadgen\"\n    static_configs:\n      - targets: []", // kept, empty
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, s)
		}
	}
}

func TestLocalPrometheusErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    LocalScrape
		want string
	}{
		// nothing to scrape is a mistake, not an empty config
		{"no targets", LocalScrape{}, "no targets"},
		// Prometheus durations have millisecond resolution
		{"sub-millisecond", LocalScrape{Producer: []string{"x:1"}, ScrapeInterval: 1500 * time.Microsecond}, "whole milliseconds"},
	} {
		if _, err := LocalPrometheus(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestPromDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{time.Second: "1s", 250 * time.Millisecond: "250ms", time.Minute: "60s"} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestComposePrometheus(t *testing.T) {
	t.Parallel()
	s := string(ComposePrometheus())
	for _, job := range []string{JobProducer, JobWorker, JobLoadgen} {
		if !strings.Contains(s, "job_name: "+job+"\n") {
			t.Errorf("compose config has no job %q", job)
		}
	}
}
