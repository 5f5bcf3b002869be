package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The plots are hand-written SVG: a line chart with one or two y axes. The
// output is deterministic (fixed precision, ordered series) so renderers
// are tested against golden files.

// palette colours series in order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

type pt struct{ X, Y float64 }

type line struct {
	Name string
	Pts  []pt
	// Y2 plots the line against the right axis.
	Y2   bool
	Dash bool
}

type tick struct {
	V     float64
	Label string
}

type chart struct {
	Title, XLabel, YLabel, Y2Label string
	// XTicks, when set, replace the computed x ticks (log axes).
	XTicks     []tick
	XMin, XMax float64
	Lines      []line
	// Markers are vertical lines at x with a label (faults).
	Markers []tick
}

const (
	svgW, svgH       = 760, 400
	padL, padR, padB = 64, 64, 48
)

// legendItem is one legend entry placed above the plot area.
type legendItem struct {
	x, y int
}

// layoutLegend places the entries left to right in rows above the plot
// and returns their positions and the top of the plot area.
func layoutLegend(lines []line) ([]legendItem, int) {
	out := make([]legendItem, len(lines))
	x, y := padL, 36
	for i, l := range lines {
		w := 30 + 6*len([]rune(l.Name)) + 16
		if x+w > svgW-padR && x > padL {
			x, y = padL, y+14
		}
		out[i] = legendItem{x: x, y: y}
		x += w
	}
	return out, y + 14
}

// render writes the chart as an SVG document.
func (c *chart) render() string {
	var b strings.Builder
	y1max, y2max := 0.0, 0.0
	hasY2 := false
	for _, l := range c.Lines {
		for _, p := range l.Pts {
			if math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				continue
			}
			if l.Y2 {
				y2max, hasY2 = math.Max(y2max, p.Y), true
			} else {
				y1max = math.Max(y1max, p.Y)
			}
		}
	}
	y1max, y2max = niceCeil(y1max), niceCeil(y2max)
	legend, padT := layoutLegend(c.Lines)
	x0, x1 := float64(padL), float64(svgW-padR)
	y0, y1 := float64(svgH-padB), float64(padT)
	xmin, xmax := c.XMin, c.XMax
	if xmax <= xmin {
		xmax = xmin + 1
	}
	sx := func(x float64) float64 { return x0 + (x-xmin)/(xmax-xmin)*(x1-x0) }
	sy := func(y, max float64) float64 { return y0 - y/max*(y0-y1) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", padL, esc(c.Title))
	// Grid and y ticks.
	for i := 0; i <= 5; i++ {
		v := y1max * float64(i) / 5
		y := sy(v, y1max)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e0e0e0"/>`+"\n", f1(x0), f1(y), f1(x1), f1(y))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s</text>`+"\n", f1(x0-6), f1(y+4), esc(fmtTick(v)))
		if hasY2 {
			fmt.Fprintf(&b, `<text x="%s" y="%s">%s</text>`+"\n", f1(x1+6), f1(y+4), esc(fmtTick(y2max*float64(i)/5)))
		}
	}
	// X ticks.
	xt := c.XTicks
	if len(xt) == 0 {
		for _, v := range niceTicks(xmin, xmax, 8) {
			xt = append(xt, tick{V: v, Label: fmtTick(v)})
		}
	}
	for _, t := range xt {
		x := sx(t.V)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e0e0e0"/>`+"\n", f1(x), f1(y0), f1(x), f1(y1))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(x), f1(y0+16), esc(t.Label))
	}
	for _, m := range c.Markers {
		x := sx(m.V)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999999" stroke-dasharray="2,3"/>`+"\n", f1(x), f1(y0), f1(x), f1(y1))
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="9" fill="#666666" text-anchor="end" transform="rotate(-90 %s %s)">%s</text>`+"\n",
			f1(x-3), f1(y1+4), f1(x-3), f1(y1+4), esc(m.Label))
	}
	// Axes and labels.
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", f1(x0), f1(y0), f1(x1), f1(y0))
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", f1(x0), f1(y0), f1(x0), f1(y1))
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", f1((x0+x1)/2), svgH-10, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%s" text-anchor="middle" transform="rotate(-90 14 %s)">%s</text>`+"\n",
		f1((y0+y1)/2), f1((y0+y1)/2), esc(c.YLabel))
	if hasY2 {
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="middle" transform="rotate(90 %d %s)">%s</text>`+"\n",
			svgW-12, f1((y0+y1)/2), svgW-12, f1((y0+y1)/2), esc(c.Y2Label))
	}
	// Lines.
	for i, l := range c.Lines {
		max := y1max
		if l.Y2 {
			max = y2max
		}
		var pts []string
		for _, p := range l.Pts {
			if math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				continue
			}
			pts = append(pts, f1(sx(p.X))+","+f1(sy(p.Y, max)))
		}
		dash := ""
		if l.Dash {
			dash = ` stroke-dasharray="6,3"`
		}
		color := palette[i%len(palette)]
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		}
		// Legend entry.
		lx, ly := legend[i].x, legend[i].y
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+24, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+28, ly+4, esc(l.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceCeil rounds v up to 1, 2 or 5 × 10^k (1 when v ≤ 0).
func niceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*mag*(1+1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// niceTicks returns about n round tick values between lo and hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	step := niceCeil((hi - lo) / float64(n))
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	case a >= 1:
		return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// percentileTicks label the HdrHistogram-style x axis: position
// log10(1/(1−p)), so 0 = p0, 1 = p90, 2 = p99 … 5 = p99.999.
var percentileTicks = []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}

// percentileCurve samples h (microseconds) along the percentile axis, in
// milliseconds, up to its max (the curve stops at the last value).
func percentileCurve(h *hdr.Histogram) []pt {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	var out []pt
	maxPos := math.Min(5, math.Log10(float64(h.TotalCount())))
	for i := 0; i <= 100; i++ {
		x := 5 * float64(i) / 100
		if x > maxPos+1e-9 {
			break
		}
		p := 100 * (1 - math.Pow(10, -x))
		out = append(out, pt{X: x, Y: float64(h.ValueAtQuantile(p)) / 1000})
	}
	out = append(out, pt{X: maxPos, Y: float64(h.Max()) / 1000})
	return out
}
