package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Metric is one sample of a Prometheus text exposition.
type Metric struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed /metrics page.
type Metrics []Metric

// ParseMetrics reads the Prometheus text format (version 0.0.4): comment
// lines are skipped, every other line is name{labels} value [timestamp].
// A line it cannot read is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		m, err := parseMetricLine(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseMetricLine(line string) (Metric, error) {
	m := Metric{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return m, fmt.Errorf("%q: no value", line)
	}
	m.Name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], m.Labels); err != nil {
			return m, fmt.Errorf("%q: %w", line, err)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 {
		return m, fmt.Errorf("%q: no value", line)
	}
	v, err := parseFloat(fields[0])
	if err != nil {
		return m, fmt.Errorf("%q: %w", line, err)
	}
	m.Value = v
	return m, nil
}

// parseLabels reads `a="x",b="y"}` into into and returns what follows '}'.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("bad label in %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		var val strings.Builder
		j := eq + 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[j])
				}
				continue
			}
			val.WriteByte(s[j])
		}
		if j >= len(s) {
			return "", fmt.Errorf("unterminated label value in %q", s)
		}
		into[name] = val.String()
		s = s[j+1:]
	}
}

func parseFloat(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// Sum adds the values of every sample named name whose labels include all
// of match (name=value pairs).
func (ms Metrics) Sum(name string, match ...string) float64 {
	var sum float64
	for _, m := range ms {
		if m.Name == name && m.matches(match) {
			sum += m.Value
		}
	}
	return sum
}

// SumBy adds the values of samples named name grouped by label.
func (ms Metrics) SumBy(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		if m.Name == name {
			out[m.Labels[label]] += m.Value
		}
	}
	return out
}

func (m *Metric) matches(match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		if m.Labels[match[i]] != match[i+1] {
			return false
		}
	}
	return true
}

// Bucket is one cumulative bucket of a classic histogram.
type Bucket struct {
	LE    float64 `json:"le"`
	Count float64 `json:"count"`
}

// Buckets adds up the classic buckets of histogram name over every label
// set (e.g. all roles and all processes), sorted by bound.
func (ms Metrics) Buckets(name string) []Bucket {
	by := map[float64]float64{}
	for _, m := range ms {
		if m.Name != name+"_bucket" {
			continue
		}
		le, err := parseFloat(m.Labels["le"])
		if err != nil {
			continue
		}
		by[le] += m.Value
	}
	out := make([]Bucket, 0, len(by))
	for le, c := range by {
		out = append(out, Bucket{LE: le, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// SubBuckets returns a − b bucket by bucket (b: an earlier scrape).
func SubBuckets(a, b []Bucket) []Bucket {
	prev := map[float64]float64{}
	for _, x := range b {
		prev[x.LE] = x.Count
	}
	out := make([]Bucket, len(a))
	for i, x := range a {
		out[i] = Bucket{LE: x.LE, Count: max(x.Count-prev[x.LE], 0)}
	}
	return out
}

// BucketQuantile estimates quantile q (0–1) from cumulative buckets the
// way PromQL's histogram_quantile does: linear interpolation inside the
// bucket holding the rank. It returns NaN without observations.
func BucketQuantile(q float64, bs []Bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].Count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				if i == 0 {
					return math.NaN()
				}
				return bs[i-1].LE
			}
			in := b.Count - below
			if in <= 0 {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-below)/in
		}
		lower, below = b.LE, b.Count
	}
	return bs[len(bs)-1].LE
}

// Scrape fetches and parses url (a /metrics endpoint).
func Scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: status %d", url, resp.StatusCode)
	}
	ms, err := ParseMetrics(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	return ms, nil
}
