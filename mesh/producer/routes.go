package producer

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one entry of the routing table.
type route struct {
	method, path string
	h            http.HandlerFunc
	auth         bool // needs the bearer token (when one is configured)
	ws           bool // a WebSocket: token may come as ?token=, no duration metric
}

// staticPattern serves the dashboard; everything not matched by an API
// route falls to it, except under /api/ and /ws.
const staticPattern = "GET /"

func (p *Producer) table() []route {
	return []route{
		{method: "POST", path: "/api/v1/tasks", h: p.handleSubmit, auth: true},
		{method: "GET", path: "/api/v1/tasks", h: p.handleList},
		{method: "POST", path: "/api/v1/tasks/batch", h: p.handleBatch, auth: true},
		{method: "GET", path: "/api/v1/tasks/{id}", h: p.handleGet},
		{method: "POST", path: "/api/v1/pipelines", h: p.handlePipeline, auth: true},
		{method: "GET", path: "/api/v1/stats", h: p.handleStats},
		{method: "GET", path: "/api/v1/workers", h: p.handleWorkers},
		{method: "GET", path: "/api/v1/dead", h: p.handleDeadList},
		{method: "POST", path: "/api/v1/dead/{id}/requeue", h: p.handleRequeueOne, auth: true},
		{method: "POST", path: "/api/v1/dead/requeue", h: p.handleRequeueAll, auth: true},
		{method: "DELETE", path: "/api/v1/dead/{id}", h: p.handlePurgeOne, auth: true},
		{method: "DELETE", path: "/api/v1/dead", h: p.handlePurgeAll, auth: true},
		{method: "GET", path: "/api/v1/admission", h: p.handleGetAdmission},
		{method: "PUT", path: "/api/v1/admission", h: p.handleSetAdmission, auth: true},
		{method: "POST", path: "/api/v1/simulate", h: p.handleSimulate, auth: true},
		{method: "GET", path: "/api/v1/openapi.json", h: handleOpenAPI},
		{method: "GET", path: "/healthz", h: p.handleHealthz},
		{method: "GET", path: "/readyz", h: p.handleReadyz},
		{method: "GET", path: "/metrics", h: p.handleMetrics},
		{method: "GET", path: "/ws", h: p.handleWS, auth: true, ws: true},
		{method: "GET", path: "/ws/completions", h: p.handleCompletions, auth: true, ws: true},
	}
}

// router sends a request to its route, and answers the others with JSON:
// 405 with Allow when the path exists for other methods, else 404 (under
// /api/ and /ws) or the dashboard.
type router struct {
	mux *http.ServeMux
	p   *Producer
}

func (p *Producer) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range p.table() {
		mux.Handle(rt.method+" "+rt.path, p.wrap(rt))
	}
	mux.Handle(staticPattern, http.HandlerFunc(p.handleStatic))
	return &router{mux: mux, p: p}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := rt.mux.Handler(r)
	if pattern == "" || (pattern == staticPattern && reserved(r.URL.Path)) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rt.unrouted(sw, r)
		rt.p.m.Request("unmatched", r.Method, sw.status(), time.Since(start))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// reserved paths never fall back to the dashboard.
func reserved(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/api" || strings.HasPrefix(path, "/ws")
}

func (rt *router) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := *r
		probe.Method = m
		if _, pattern := rt.mux.Handler(&probe); pattern != "" && (pattern != staticPattern || !reserved(r.URL.Path)) {
			allow = append(allow, m)
			if m == "GET" {
				allow = append(allow, "HEAD")
			}
		}
	}
	if len(allow) > 0 {
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		writeError(w, errMethod(r.Method, list))
		return
	}
	writeError(w, errNotFound("no route %s %s", r.Method, truncate(r.URL.Path, 200)))
}

// wrap adds the token check and the duration metric to a route.
func (p *Producer) wrap(rt route) http.Handler {
	h := rt.h
	if rt.auth && p.cfg.APIToken != "" {
		h = p.requireToken(h, rt.ws)
	}
	if rt.ws {
		return h // a WebSocket lives for minutes: its duration is no latency
	}
	path := rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		p.m.Request(path, r.Method, sw.status(), time.Since(start))
	})
}

// requireToken answers 401 unless the request carries the API token.
func (p *Producer) requireToken(h http.HandlerFunc, query bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.tokenOK(r, query) {
			writeError(w, errUnauthorized())
			return
		}
		h(w, r)
	}
}

func (p *Producer) tokenOK(r *http.Request, query bool) bool {
	auth := r.Header.Get("Authorization")
	given, ok := "", len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") // the scheme is case-insensitive
	if ok {
		given = auth[7:]
	}
	if !ok && query {
		given, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
	return subtle.ConstantTimeCompare(sum[:], p.token[:]) == 1
}

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int { return max(w.code, http.StatusOK) }

// openAPI describes the routes for tools (docs/contracts.md is normative);
// TestOpenAPICoversRoutes keeps it in step with table.
//
//go:embed openapi.json
var openAPI []byte

func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}

// handleMetrics serves Config.Registry, or 404 when there is none.
func (p *Producer) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if p.promHandler == nil {
		writeError(w, errNotFound("metrics are not enabled in this process"))
		return
	}
	p.promHandler.ServeHTTP(w, r)
}

func newPromHandler(reg *prometheus.Registry) http.Handler {
	if reg == nil {
		return nil
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true, Timeout: 10 * time.Second})
}
