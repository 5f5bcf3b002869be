package dashboards

import (
	"fmt"
	"strings"
)

// Constants every dashboard shares with the Grafana provisioning files
// (grafana/provisioning); the tests hold both sides to them.
const (
	// DatasourceUID is the fixed uid of the provisioned Prometheus datasource.
	DatasourceUID = "agentmesh-prom"
	// DatasourceType is the datasource plugin id.
	DatasourceType = "prometheus"
	// SchemaVersion is the dashboard JSON schema version written (Grafana 11).
	SchemaVersion = 39
	// Tag marks every Agent Mesh dashboard; the dashboards link to each other by it.
	Tag = "agentmesh"
)

// The PromQL building blocks every panel uses, so that all panels filter and
// aggregate the same way.
const (
	// rateWindow is Grafana's rate interval: 4 scrape intervals or more.
	rateWindow = "$__rate_interval"
	// byRole and byInstance are the template variables' label matchers.
	byRole     = `role=~"$role"`
	byInstance = `instance=~"$instance"`
)

var promDatasource = Datasource{Type: DatasourceType, UID: DatasourceUID}

// sel renders a series selector: metric{m1,m2}.
func sel(metric string, matchers ...string) string {
	if len(matchers) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(matchers, ",") + "}"
}

// rate renders rate(selector[$__rate_interval]).
func rate(selector string) string {
	return "rate(" + selector + "[" + rateWindow + "])"
}

// sumBy renders sum by (labels) (expr), or sum(expr) without labels.
func sumBy(labels, expr string) string { return aggBy("sum", labels, expr) }

// maxBy renders max by (labels) (expr), or max(expr) without labels.
func maxBy(labels, expr string) string { return aggBy("max", labels, expr) }

func aggBy(op, labels, expr string) string {
	if labels == "" {
		return op + "(" + expr + ")"
	}
	return op + " by (" + labels + ") (" + expr + ")"
}

// quantile renders histogram_quantile over a classic histogram's buckets,
// summed by le (and the extra labels, if any).
func quantile(q, histogram, by string, matchers ...string) string {
	le := "le"
	if by != "" {
		le = by + ", le"
	}
	return "histogram_quantile(" + q + ", " + sumBy(le, rate(sel(histogram+"_bucket", matchers...))) + ")"
}

// percentiles are the quantiles latency panels show (never averages alone).
var percentiles = []struct{ q, name string }{
	{"0.5", "p50"}, {"0.9", "p90"}, {"0.99", "p99"}, {"0.999", "p99.9"},
}

// percentileTargets returns one target per entry of percentiles.
func percentileTargets(histogram, legendPrefix string, matchers ...string) []Target {
	var ts []Target
	for _, p := range percentiles {
		ts = append(ts, q(quantile(p.q, histogram, "", matchers...), legendPrefix+p.name))
	}
	return ts
}

// q is a range query with a legend; panel constructors fill refId and datasource.
func q(expr, legend string) Target {
	return Target{Expr: expr, LegendFormat: legend}
}

// board lays panels out left to right, top to bottom, on the 24-column grid
// and numbers them, so ids are unique and positions never overlap.
type board struct {
	d      *Dashboard
	nextID int
	x, y   int
	rowH   int
}

// newBoard starts a dashboard with the shared settings.
func newBoard(uid, title, description, from string, vars ...Variable) *board {
	return &board{d: &Dashboard{
		Annotations: Annotations{List: []Annotation{{
			BuiltIn:    1,
			Datasource: Datasource{Type: "grafana", UID: "-- Grafana --"},
			Enable:     true,
			Hide:       true,
			IconColor:  "rgba(0, 211, 255, 1)",
			Name:       "Annotations & Alerts",
			Type:       "dashboard",
		}}},
		Description:  description,
		Editable:     true,
		GraphTooltip: 1, // shared crosshair
		Links: []Link{{
			AsDropdown: true, Icon: "external link", IncludeVars: true, KeepTime: true,
			Tags: []string{Tag}, Title: "Agent Mesh", Type: "dashboards",
		}},
		Panels:        []*Panel{},
		Refresh:       "10s",
		SchemaVersion: SchemaVersion,
		Tags:          []string{Tag},
		Templating:    Templating{List: vars},
		Time:          TimeRange{From: from, To: "now"},
		Timepicker:    Timepicker{RefreshIntervals: []string{"5s", "10s", "30s", "1m", "5m", "15m"}},
		Timezone:      "browser",
		Title:         title,
		UID:           uid,
		Version:       1,
	}, nextID: 1}
}

// row starts a new row of panels under a row header.
func (b *board) row(title string) {
	b.newline()
	collapsed := false
	b.d.Panels = append(b.d.Panels, &Panel{
		Collapsed: &collapsed,
		GridPos:   GridPos{H: 1, W: 24, X: 0, Y: b.y},
		ID:        b.id(),
		Title:     title,
		Type:      "row",
	})
	b.y++
}

// add places p with width w and height h after the previous panel, wrapping
// to a new line when the row is full.
func (b *board) add(w, h int, p *Panel) {
	if w < 1 || w > 24 {
		panic(fmt.Sprintf("dashboards: panel %q width %d", p.Title, w))
	}
	if b.x+w > 24 {
		b.newline()
	}
	p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
	p.ID = b.id()
	b.x += w
	b.rowH = max(b.rowH, h)
	b.d.Panels = append(b.d.Panels, p)
}

func (b *board) newline() {
	b.y += b.rowH
	b.x, b.rowH = 0, 0
}

func (b *board) id() int {
	id := b.nextID
	b.nextID++
	return id
}

// variable is a multi-value label_values variable with an All option that
// matches every value (including series without the label's other values).
func variable(name, label, description, query string) Variable {
	return Variable{
		AllValue:    ".*",
		Current:     map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		Datasource:  promDatasource,
		Definition:  query,
		Description: description,
		IncludeAll:  true,
		Label:       label,
		Multi:       true,
		Name:        name,
		Options:     []any{},
		Query:       VariableQuery{Query: query, RefID: "StandardVariableQuery"},
		Refresh:     2, // on time range change: scaled workers appear without a reload
		Sort:        1,
		Type:        "query",
	}
}

// roleVariable lists the agent roles found on metric.
func roleVariable(metric string) Variable {
	return variable("role", "Role", "Agent role (ARCHITECT, DEVELOPER, QA).",
		"label_values("+metric+", role)")
}

// instanceVariable lists the scrape targets (host:port) found on selector.
func instanceVariable(selector, description string) Variable {
	return variable("instance", "Instance", description, "label_values("+selector+", instance)")
}

// panel builds a visualization with the shared datasource, unit and targets
// (refIds A, B, C… in order).
func panel(typ, title, unit, description string, targets []Target) *Panel {
	if unit == "" {
		panic(fmt.Sprintf("dashboards: panel %q has no unit", title))
	}
	ds := promDatasource
	for i := range targets {
		targets[i].Datasource = promDatasource
		targets[i].EditorMode = "code"
		targets[i].Range = true
		targets[i].RefID = string(rune('A' + i))
	}
	return &Panel{
		Datasource:  &ds,
		Description: description,
		FieldConfig: &FieldConfig{
			Defaults: FieldDefaults{
				Color:      map[string]any{"mode": "palette-classic"},
				Mappings:   []any{},
				Thresholds: Thresholds{Mode: "absolute", Steps: []ThresholdStep{{Color: "green"}}},
				Unit:       unit,
			},
			Overrides: []Override{},
		},
		Targets: targets,
		Title:   title,
		Type:    typ,
	}
}

// timeseries is a line chart with a table legend (mean, max, last).
func timeseries(title, unit, description string, targets ...Target) *Panel {
	p := panel("timeseries", title, unit, description, targets)
	p.FieldConfig.Defaults.Custom = map[string]any{
		"axisBorderShow":    false,
		"axisCenteredZero":  false,
		"axisColorMode":     "text",
		"axisLabel":         "",
		"axisPlacement":     "auto",
		"barAlignment":      0,
		"drawStyle":         "line",
		"fillOpacity":       10,
		"gradientMode":      "none",
		"hideFrom":          map[string]any{"legend": false, "tooltip": false, "viz": false},
		"insertNulls":       false,
		"lineInterpolation": "linear",
		"lineWidth":         1,
		"pointSize":         4,
		"scaleDistribution": map[string]any{"type": "linear"},
		"showPoints":        "never",
		"spanNulls":         false,
		"stacking":          map[string]any{"group": "A", "mode": "none"},
		"thresholdsStyle":   map[string]any{"mode": "off"},
	}
	p.Options = map[string]any{
		"legend": map[string]any{
			"calcs":       []string{"mean", "max", "lastNotNull"},
			"displayMode": "table",
			"placement":   "bottom",
			"showLegend":  true,
		},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
	}
	return p
}

// stat is a single big number (the last value) with a sparkline.
func stat(title, unit, description string, targets ...Target) *Panel {
	p := panel("stat", title, unit, description, targets)
	p.Options = map[string]any{
		"colorMode":         "value",
		"graphMode":         "area",
		"justifyMode":       "auto",
		"orientation":       "auto",
		"reduceOptions":     map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		"showPercentChange": false,
		"textMode":          "auto",
		"wideLayout":        true,
	}
	return p
}

// heatmap shows a classic histogram's bucket rates over time; yUnit is the
// unit of the buckets (le), the cells are observations per second.
func heatmap(title, yUnit, description string, target Target) *Panel {
	target.Format = "heatmap"
	target.LegendFormat = "{{le}}"
	p := panel("heatmap", title, "ops", description, []Target{target})
	p.FieldConfig.Defaults.Color = nil
	p.FieldConfig.Defaults.Custom = map[string]any{
		"hideFrom":          map[string]any{"legend": false, "tooltip": false, "viz": false},
		"scaleDistribution": map[string]any{"type": "linear"},
	}
	p.Options = map[string]any{
		"calculate": false,
		"cellGap":   1,
		"color": map[string]any{
			"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": false,
			"scale": "exponential", "scheme": "Oranges", "steps": 64,
		},
		"exemplars":    map[string]any{"color": "rgba(255,0,255,0.7)"},
		"filterValues": map[string]any{"le": 1e-9},
		"legend":       map[string]any{"show": true},
		"rowsFrame":    map[string]any{"layout": "auto"},
		"tooltip":      map[string]any{"mode": "single", "showColorScale": false, "yHistogram": true},
		"yAxis":        map[string]any{"axisPlacement": "left", "reverse": false, "unit": yUnit},
	}
	return p
}

// Panel tweaks, chained after a constructor.

// withMin sets the axis minimum.
func (p *Panel) withMin(v float64) *Panel { p.FieldConfig.Defaults.Min = &v; return p }

// withRange sets the axis minimum and maximum.
func (p *Panel) withRange(lo, hi float64) *Panel {
	p.FieldConfig.Defaults.Min, p.FieldConfig.Defaults.Max = &lo, &hi
	return p
}

// stacked stacks the series (parts of a whole, e.g. queue depth by state).
func (p *Panel) stacked() *Panel {
	p.FieldConfig.Defaults.Custom["stacking"] = map[string]any{"group": "A", "mode": "normal"}
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 30
	return p
}

// withThresholds colours values: base colour, then each (value, colour) step.
func (p *Panel) withThresholds(base string, steps ...any) *Panel {
	t := []ThresholdStep{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := steps[i].(float64)
		t = append(t, ThresholdStep{Color: steps[i+1].(string), Value: &v})
	}
	p.FieldConfig.Defaults.Thresholds.Steps = t
	return p
}

// dashed draws the series whose display name matches re as a dashed line
// (limits, targets: the lines other series are compared with).
func (p *Panel) dashed(re string) *Panel {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, Override{
		Matcher: Matcher{ID: "byRegexp", Options: re},
		Properties: []Property{
			{ID: "custom.lineStyle", Value: map[string]any{"dash": []int{10, 10}, "fill": "dash"}},
			{ID: "custom.fillOpacity", Value: 0},
		},
	})
	return p
}

// textName makes a stat panel show the series name (e.g. the admission state).
func (p *Panel) textName() *Panel {
	p.Options.(map[string]any)["textMode"] = "name"
	return p
}
