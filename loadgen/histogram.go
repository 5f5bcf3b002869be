package loadgen

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The geometry of every latency histogram: microseconds from 1 µs to one
// hour at 3 significant digits (about 190 KB each, fixed). Values past an
// hour are recorded as an hour.
const (
	histLowest  = 1
	histHighest = int64(3_600_000_000)
	histDigits  = 3
	// maxHDRLen bounds an encoded histogram accepted by the decoder.
	maxHDRLen = 1 << 20
)

func newHist() *hdr.Histogram { return hdr.New(histLowest, histHighest, histDigits) }

// recordNS records a duration in nanoseconds as microseconds, clamped to the
// histogram's range.
func recordNS(h *hdr.Histogram, ns int64) {
	us := max(ns/1000, 0)
	_ = h.RecordValue(min(us, histHighest))
}

// Histogram is one latency distribution of a result: a summary in
// microseconds and the full HDR histogram it was computed from, so results
// can be merged exactly.
type Histogram struct {
	// Count is the number of recorded values.
	Count  int64   `json:"count"`
	MinUS  int64   `json:"min_us"`
	MeanUS float64 `json:"mean_us"`
	P50US  int64   `json:"p50_us"`
	P90US  int64   `json:"p90_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p999_us"`
	MaxUS  int64   `json:"max_us"`
	// HDR is the histogram of microsecond values in HdrHistogram's V2
	// compressed base64 encoding ("HISTF…"), geometry 1 µs–1 h, 3 digits.
	HDR string `json:"hdr"`

	h *hdr.Histogram
}

// newHistogram summarises and encodes h (which it keeps, not copies).
// An empty histogram has an empty HDR.
func newHistogram(h *hdr.Histogram) *Histogram {
	out := &Histogram{h: h}
	out.summarise()
	if out.Count == 0 {
		return out
	}
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err == nil { // encoding into memory cannot fail
		out.HDR = string(enc)
	}
	return out
}

func (x *Histogram) summarise() {
	h := x.h
	x.Count = h.TotalCount()
	if x.Count == 0 {
		*x = Histogram{h: h}
		return
	}
	x.MinUS, x.MaxUS = h.Min(), h.Max()
	x.MeanUS = math.Round(h.Mean()*10) / 10
	v := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	x.P50US, x.P90US, x.P99US, x.P999US = v[50], v[90], v[99], v[99.9]
}

// HDRHistogram returns the full histogram (microseconds). The caller must not
// modify it. Histograms of the series are kept encoded and decoded anew on
// each call, so that a long series stays small in memory.
func (x *Histogram) HDRHistogram() *hdr.Histogram {
	switch {
	case x == nil:
		return newHist()
	case x.h != nil:
		return x.h
	case x.HDR != "":
		if h, err := decodeHDR(x.HDR); err == nil {
			return h
		}
	}
	return newHist()
}

// Quantile returns the value at percentile q (0–100) in microseconds.
func (x *Histogram) Quantile(q float64) int64 { return x.HDRHistogram().ValueAtQuantile(q) }

// decode checks HDR, rebuilds the histogram from it and recomputes the
// summary: the encoded histogram is authoritative. keep says whether to keep
// the decoded histogram in memory.
func (x *Histogram) decode(keep bool) error {
	if x.HDR == "" { // empty: nothing to allocate
		if x.Count != 0 {
			return errors.New("histogram has a count but no hdr")
		}
		*x = Histogram{}
		return nil
	}
	h, err := decodeHDR(x.HDR)
	if err != nil {
		return err
	}
	x.h = h
	x.summarise()
	if !keep {
		x.h = nil
	}
	return nil
}

// decodeHDR decodes an untrusted encoded histogram. It checks the header's
// geometry before hdrhistogram allocates counts for it, so a hostile header
// cannot ask for gigabytes.
func decodeHDR(s string) (*hdr.Histogram, error) {
	if len(s) > maxHDRLen {
		return nil, fmt.Errorf("hdr: %d bytes is longer than %d", len(s), maxHDRLen)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("hdr: %w", err)
	}
	if len(raw) < 8 {
		return nil, errors.New("hdr: too short")
	}
	z, err := zlib.NewReader(bytes.NewReader(raw[8:]))
	if err != nil {
		return nil, fmt.Errorf("hdr: %w", err)
	}
	var head [40]byte
	_, err = io.ReadFull(z, head[:])
	_ = z.Close()
	if err != nil {
		return nil, fmt.Errorf("hdr: reading header: %w", err)
	}
	digits := int32(binary.BigEndian.Uint32(head[12:16]))
	lowest := int64(binary.BigEndian.Uint64(head[16:24]))
	highest := int64(binary.BigEndian.Uint64(head[24:32]))
	if digits != histDigits || lowest != histLowest || highest != histHighest {
		return nil, fmt.Errorf("hdr: geometry %d–%d at %d digits, want %d–%d at %d",
			lowest, highest, digits, histLowest, histHighest, histDigits)
	}
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("hdr: %w", err)
	}
	return h, nil
}

// mergeHistograms merges xs into a new Histogram; keep as in decode.
func mergeHistograms(keep bool, xs ...*Histogram) *Histogram {
	var nonEmpty bool
	for _, x := range xs {
		nonEmpty = nonEmpty || (x != nil && x.Count > 0)
	}
	if !nonEmpty {
		return &Histogram{}
	}
	h := newHist()
	for _, x := range xs {
		if x != nil && x.Count > 0 {
			h.Merge(x.HDRHistogram())
		}
	}
	out := newHistogram(h)
	if !keep {
		out.h = nil
	}
	return out
}
