package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The static checks read the committed JSON as Grafana does — as plain JSON,
// not through this package's types — so they hold whoever wrote the file.

// dashFile is one committed dashboard, decoded generically.
type dashFile struct {
	name string
	doc  map[string]any
}

func loadDashboards(t testing.TB) []dashFile {
	t.Helper()
	paths, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no dashboards/*.json: run `go run ./dashboards/gen`")
	}
	var out []dashFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s is not valid JSON: %v", p, err)
		}
		out = append(out, dashFile{p, doc})
	}
	return out
}

// panelsOf returns every panel, rows' nested panels included.
func panelsOf(doc map[string]any) []map[string]any {
	var out []map[string]any
	var walk func([]any)
	walk = func(ps []any) {
		for _, p := range ps {
			m, _ := p.(map[string]any)
			out = append(out, m)
			walk(arr(m, "panels"))
		}
	}
	walk(arr(doc, "panels"))
	return out
}

// target is one query of a panel, with where it comes from.
type target struct {
	file, panel, refID, expr string
	panelID                  int
}

func (tg target) String() string {
	return fmt.Sprintf("%s panel %d %q target %s", tg.file, tg.panelID, tg.panel, tg.refID)
}

// targetsOf returns every panel target of a dashboard.
func targetsOf(f dashFile) []target {
	var out []target
	for _, p := range panelsOf(f.doc) {
		id, _ := num(p, "id")
		for _, tg := range arr(p, "targets") {
			out = append(out, target{file: f.name, panel: str(p, "title"), panelID: int(id),
				refID: str(tg, "refId"), expr: str(tg, "expr")})
		}
	}
	return out
}

// templateVar is a template variable: its name and label_values query.
type templateVar struct{ name, selector, label string }

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func variablesOf(t testing.TB, f dashFile) []templateVar {
	t.Helper()
	var out []templateVar
	for _, v := range arr(obj(f.doc, "templating"), "list") {
		q := str(obj(v, "query"), "query")
		if q == "" {
			q = str(v, "query")
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: variable %q: query %q is not label_values(selector, label)", f.name, str(v, "name"), q)
			continue
		}
		out = append(out, templateVar{name: str(v, "name"), selector: m[1], label: m[2]})
	}
	return out
}

func TestDashboards(t *testing.T) {
	t.Parallel()
	allowed := allowedMetrics(t)
	uids, titles := map[string]string{}, map[string]string{}
	for _, f := range loadDashboards(t) {
		uid, title := str(f.doc, "uid"), str(f.doc, "title")
		if prev, dup := uids[uid]; dup {
			t.Errorf("%s and %s share uid %q", prev, f.name, uid)
		}
		if prev, dup := titles[title]; dup {
			t.Errorf("%s and %s share title %q", prev, f.name, title)
		}
		uids[uid], titles[title] = f.name, f.name
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			checkDashboard(t, f)
			checkVariables(t, f, allowed)
			checkPanels(t, f)
			checkTargets(t, f, allowed)
			checkLayout(t, f)
		})
	}
}

func checkDashboard(t *testing.T, f dashFile) {
	if uid := str(f.doc, "uid"); !regexp.MustCompile(`^[a-z0-9-]{1,40}$`).MatchString(uid) {
		t.Errorf("uid %q: want a fixed, short, lower-case uid", uid)
	}
	if str(f.doc, "title") == "" {
		t.Error("no title")
	}
	if v, _ := num(f.doc, "schemaVersion"); v < 39 {
		t.Errorf("schemaVersion %v: want 39 or later (the current classic JSON model)", v)
	}
	if !slices.Contains(strs(arr(f.doc, "tags")), Tag) {
		t.Errorf("tags %v lack %q (the dashboards link to each other by it)", arr(f.doc, "tags"), Tag)
	}
	if str(f.doc, "refresh") == "" || str(obj(f.doc, "time"), "from") == "" {
		t.Error("no refresh interval or default time range")
	}
}

func checkVariables(t *testing.T, f dashFile, allowed map[string]bool) {
	vars := map[string]bool{}
	for _, v := range arr(obj(f.doc, "templating"), "list") {
		name := str(v, "name")
		vars[name] = true
		if ds := obj(v, "datasource"); str(ds, "uid") != DatasourceUID || str(ds, "type") != DatasourceType {
			t.Errorf("variable %q: datasource %v, want the provisioned {%s %s}", name, ds, DatasourceType, DatasourceUID)
		}
	}
	for _, want := range []string{"role", "instance"} {
		if !vars[want] {
			t.Errorf("no %q variable", want)
		}
	}
	for _, v := range variablesOf(t, f) {
		if v.label != v.name {
			t.Errorf("variable %q lists label %q", v.name, v.label)
		}
		for _, m := range metricNames(v.selector) {
			if !allowed[m] {
				t.Errorf("variable %q reads %s, which is neither in docs/contracts.md nor a Go/process collector metric", v.name, m)
			}
		}
	}
}

func checkPanels(t *testing.T, f dashFile) {
	ids := map[int]string{}
	for _, p := range panelsOf(f.doc) {
		id, ok := num(p, "id")
		title, typ := str(p, "title"), str(p, "type")
		switch {
		case !ok || id < 1:
			t.Errorf("panel %q has no positive id", title)
		case ids[int(id)] != "":
			t.Errorf("panels %q and %q share id %d", ids[int(id)], title, int(id))
		default:
			ids[int(id)] = title
		}
		if title == "" {
			t.Errorf("panel %d has no title", int(id))
		}
		if typ == "row" {
			if len(arr(p, "targets")) > 0 {
				t.Errorf("row %q has targets", title)
			}
			continue
		}
		if ds := obj(p, "datasource"); str(ds, "uid") != DatasourceUID || str(ds, "type") != DatasourceType {
			t.Errorf("panel %q: datasource %v, want the provisioned {%s %s}", title, ds, DatasourceType, DatasourceUID)
		}
		if str(obj(obj(p, "fieldConfig"), "defaults"), "unit") == "" {
			t.Errorf("panel %q has no unit (fieldConfig.defaults.unit)", title)
		}
		if typ == "heatmap" && str(obj(obj(p, "options"), "yAxis"), "unit") == "" {
			t.Errorf("heatmap %q has no bucket unit (options.yAxis.unit)", title)
		}
		if len(arr(p, "targets")) == 0 {
			t.Errorf("panel %q has no targets", title)
		}
		refs := map[string]bool{}
		for _, tg := range arr(p, "targets") {
			if ds := obj(tg, "datasource"); str(ds, "uid") != DatasourceUID {
				t.Errorf("panel %q target %s: datasource %v, want uid %s", title, str(tg, "refId"), ds, DatasourceUID)
			}
			ref := str(tg, "refId")
			if ref == "" || refs[ref] {
				t.Errorf("panel %q: refId %q empty or repeated", title, ref)
			}
			refs[ref] = true
		}
	}
}

func checkTargets(t *testing.T, f dashFile, allowed map[string]bool) {
	vars := map[string]bool{}
	for _, v := range arr(obj(f.doc, "templating"), "list") {
		vars[str(v, "name")] = true
	}
	used := map[string]bool{}
	for _, tg := range targetsOf(f) {
		if strings.TrimSpace(tg.expr) == "" {
			t.Errorf("%s: empty expr", tg)
			continue
		}
		if d := strings.Count(tg.expr, "(") - strings.Count(tg.expr, ")"); d != 0 {
			t.Errorf("%s: unbalanced parentheses in %q", tg, tg.expr)
		}
		names := metricNames(tg.expr)
		if len(names) == 0 {
			t.Errorf("%s: %q reads no metric", tg, tg.expr)
		}
		for _, m := range names {
			if !allowed[m] {
				t.Errorf("%s reads %s, which is neither in docs/contracts.md nor a Go/process collector metric", tg, m)
			}
		}
		for _, v := range variablesUsed(tg.expr) {
			used[v] = true
			if !vars[v] && !grafanaMacros[v] {
				t.Errorf("%s uses $%s, which the dashboard does not define", tg, v)
			}
		}
	}
	for _, v := range []string{"role", "instance"} {
		if !used[v] {
			t.Errorf("no panel uses $%s", v)
		}
	}
}

// checkLayout: panels fit the 24-column grid and do not overlap.
func checkLayout(t *testing.T, f dashFile) {
	type rect struct {
		title      string
		x, y, w, h float64
	}
	var rs []rect
	for _, p := range arr(f.doc, "panels") {
		g := obj(p, "gridPos")
		x, _ := num(g, "x")
		y, _ := num(g, "y")
		w, _ := num(g, "w")
		h, _ := num(g, "h")
		r := rect{str(p, "title"), x, y, w, h}
		if w < 1 || h < 1 || x < 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos %v outside the 24-column grid", r.title, g)
		}
		for _, o := range rs {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panels %q and %q overlap", o.title, r.title)
			}
		}
		rs = append(rs, r)
	}
}
