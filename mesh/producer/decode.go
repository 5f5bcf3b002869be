package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Every decoder of outside input lives in this file and is a pure function
// of bytes or url.Values, so the fuzz targets exercise exactly what the
// handlers run.

// MaxJSONDepth bounds the nesting of a request body (payload included):
// deeper documents are refused with 400 before they reach encoding/json or
// PostgreSQL's jsonb parser.
const MaxJSONDepth = 64

// maxCursorLen bounds a cursor query parameter (a real one is 34 bytes).
const maxCursorLen = 128

// readBody checks the Content-Type, then reads the body through
// http.MaxBytesReader, so a body over limit is refused with 413 as soon as
// the limit is crossed (or at once when Content-Length announces it), never
// after buffering it whole. The body must be valid UTF-8 JSON text.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if ae := checkContentType(r.Header.Get("Content-Type")); ae != nil {
		return nil, ae
	}
	if r.ContentLength > limit {
		return nil, errTooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(innermost(w), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge(limit)
		}
		return nil, errBadJSON("reading the request body: %v", err)
	}
	return data, checkJSONText(data)
}

// innermost unwraps middleware writers: MaxBytesReader can only tell the
// server to close the connection (instead of draining the rest of an
// oversized body before answering) through the server's own writer.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

func checkContentType(ct string) *apiError {
	if ct == "" {
		return errUnsupportedMedia(ct)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errUnsupportedMedia(ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errUnsupportedMedia(ct)
	}
	return nil
}

// checkJSONText refuses empty bodies, invalid UTF-8 (which encoding/json
// would silently replace with U+FFFD) and nesting past MaxJSONDepth.
func checkJSONText(data []byte) *apiError {
	if len(bytes.TrimSpace(data)) == 0 {
		return errBadJSON("empty request body: want a JSON object")
	}
	if !utf8.Valid(data) {
		return errBadJSON("request body is not valid UTF-8")
	}
	if d := jsonDepth(data, MaxJSONDepth); d > MaxJSONDepth {
		return errBadJSON("JSON nested deeper than %d levels", MaxJSONDepth)
	}
	return nil
}

// jsonDepth returns the deepest nesting of arrays and objects in data,
// stopping early once it passes limit. Brackets inside strings do not count.
func jsonDepth(data []byte, limit int) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// decodeStrict decodes one JSON object into v: unknown fields and trailing
// data are refused; a value of the wrong type is a 422 naming its field
// (prefixed with prefix, e.g. "tasks[3].").
func decodeStrict(data []byte, v any, prefix string) *apiError {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errBadJSON("%swant a JSON object", where(prefix))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadJSON("unexpected data after the JSON value")
	}
	return nil
}

func jsonError(err error, prefix string) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return errBadJSON("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te) && te.Field == "":
		return errBadJSON("%swant a JSON object, got %s", where(prefix), te.Value)
	case errors.As(err, &te):
		return errValidation(prefix+te.Field, fmt.Sprintf("%s%s: want %s, got %s", prefix, te.Field, typeName(te.Type.String()), te.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errBadJSON("truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return errValidation(prefix+name, fmt.Sprintf("%s%s: unknown field", prefix, name))
	}
	return errBadJSON("%s%v", where(prefix), err)
}

// where renders a field prefix ("tasks[3].") as the start of a message.
func where(prefix string) string {
	if prefix == "" {
		return ""
	}
	return strings.TrimSuffix(prefix, ".") + ": "
}

// typeName renders a Go type as the JSON kind a client should send.
func typeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"), strings.HasSuffix(goType, "Priority"):
		return "a number"
	case goType == "bool", strings.HasSuffix(goType, "*bool"):
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "a string"
}

// decodeSpec decodes the body of POST /api/v1/tasks. The Idempotency-Key
// header, when set, is the client key; a body client_key that differs is a
// 422. The spec is validated (defaults filled).
func decodeSpec(data []byte, idemKey string) (task.Spec, *apiError) {
	var sp task.Spec
	if ae := decodeStrict(data, &sp, ""); ae != nil {
		return sp, ae
	}
	if ae := applyIdempotencyKey(&sp, idemKey); ae != nil {
		return sp, ae
	}
	return sp, validateSpec(&sp, false, "")
}

func applyIdempotencyKey(sp *task.Spec, key string) *apiError {
	if key == "" {
		return nil
	}
	if sp.ClientKey != "" && sp.ClientKey != key {
		return errValidation("client_key", "client_key: differs from the Idempotency-Key header")
	}
	sp.ClientKey = key
	return nil
}

// batchBody is the body of POST /api/v1/tasks/batch.
type batchBody struct {
	Tasks []json.RawMessage `json:"tasks"`
}

// decodeBatch decodes and validates a batch of at most maxBatch specs; an
// error names the index ("tasks[3].role").
func decodeBatch(data []byte, maxBatch int) ([]task.Spec, *apiError) {
	var b batchBody
	if ae := decodeStrict(data, &b, ""); ae != nil {
		return nil, ae
	}
	switch {
	case len(b.Tasks) == 0:
		return nil, errValidation("tasks", "tasks: want at least one task")
	case len(b.Tasks) > maxBatch:
		return nil, errValidation("tasks", fmt.Sprintf("tasks: %d tasks (limit %d per batch)", len(b.Tasks), maxBatch))
	}
	specs := make([]task.Spec, len(b.Tasks))
	for i, raw := range b.Tasks {
		prefix := fmt.Sprintf("tasks[%d].", i)
		if ae := decodeStrict(raw, &specs[i], prefix); ae != nil {
			return nil, ae
		}
		if ae := validateSpec(&specs[i], false, prefix); ae != nil {
			return nil, ae
		}
	}
	return specs, nil
}

// pipelineBody is the body of POST /api/v1/pipelines.
type pipelineBody struct {
	Payload     json.RawMessage `json:"payload,omitempty"`
	Priority    *task.Priority  `json:"priority,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	ClientKey   string          `json:"client_key,omitempty"`
}

// decodePipeline decodes the body of POST /api/v1/pipelines into the spec
// of its ARCHITECT stage.
func decodePipeline(data []byte, idemKey string) (task.Spec, *apiError) {
	var b pipelineBody
	if ae := decodeStrict(data, &b, ""); ae != nil {
		return task.Spec{}, ae
	}
	sp := task.Spec{Role: task.Architect, Payload: b.Payload, Priority: b.Priority, MaxAttempts: b.MaxAttempts, ClientKey: b.ClientKey}
	if ae := applyIdempotencyKey(&sp, idemKey); ae != nil {
		return sp, ae
	}
	return sp, validateSpec(&sp, true, "")
}

// validateSpec runs task.Spec.Validate plus what PostgreSQL needs: a client
// key without NUL, a payload jsonb accepts (no \u0000). For a pipeline the
// role must be ARCHITECT.
func validateSpec(sp *task.Spec, pipeline bool, prefix string) *apiError {
	if err := sp.Validate(); err != nil {
		var fe *task.FieldError
		if errors.As(err, &fe) {
			return errField(fe, prefix)
		}
		return errValidation(prefix, prefix+err.Error())
	}
	if pipeline && sp.Role != task.Architect {
		return errValidation(prefix+"role", prefix+"role: a pipeline starts with ARCHITECT")
	}
	if strings.IndexByte(sp.ClientKey, 0) >= 0 || !utf8.ValidString(sp.ClientKey) {
		return errValidation(prefix+"client_key", prefix+"client_key: must be UTF-8 text without NUL")
	}
	if bytes.Contains(sp.Payload, []byte(`\u0000`)) {
		return errValidation(prefix+"payload", prefix+`payload: \u0000 cannot be stored`)
	}
	if !json.Valid(sp.Payload) {
		return errValidation(prefix+"payload", prefix+"payload: not valid JSON")
	}
	return nil
}

// admissionBody is the body of PUT /api/v1/admission.
type admissionBody struct {
	Paused *bool `json:"paused"`
}

func decodeAdmission(data []byte) (bool, *apiError) {
	var b admissionBody
	if ae := decodeStrict(data, &b, ""); ae != nil {
		return false, ae
	}
	if b.Paused == nil {
		return false, errValidation("paused", "paused: required (true or false)")
	}
	return *b.Paused, nil
}

// Simulation bounds.
const (
	MaxSimulateRate    = 5000
	MaxSimulateSeconds = 300
)

// SimulateSpec is the body (and the answer) of POST /api/v1/simulate.
type SimulateSpec struct {
	// Rate is submissions per second, 1 to 5000.
	Rate int `json:"rate"`
	// Seconds the simulation runs, 1 to 300.
	Seconds int `json:"seconds"`
	// PipelineFraction of submissions start a whole pipeline, 0 to 1.
	PipelineFraction float64 `json:"pipeline_fraction"`
}

func decodeSimulate(data []byte) (SimulateSpec, *apiError) {
	var s SimulateSpec
	if ae := decodeStrict(data, &s, ""); ae != nil {
		return s, ae
	}
	switch {
	case s.Rate < 1 || s.Rate > MaxSimulateRate:
		return s, errValidation("rate", fmt.Sprintf("rate: %d out of range (want 1 to %d per second)", s.Rate, MaxSimulateRate))
	case s.Seconds < 1 || s.Seconds > MaxSimulateSeconds:
		return s, errValidation("seconds", fmt.Sprintf("seconds: %d out of range (want 1 to %d)", s.Seconds, MaxSimulateSeconds))
	case !(s.PipelineFraction >= 0 && s.PipelineFraction <= 1):
		return s, errValidation("pipeline_fraction", fmt.Sprintf("pipeline_fraction: %g out of range (want 0 to 1)", s.PipelineFraction))
	}
	return s, nil
}

// parseID reads a task id path parameter.
func parseID(s string) (uuid.UUID, *apiError) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, errValidation("id", fmt.Sprintf("id: %q is not a task id (want a UUID like 0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d)", truncate(s, 64)))
	}
	return id, nil
}

// parseListQuery reads state, role, limit and cursor of GET /api/v1/tasks
// (dead=false) or GET /api/v1/dead (dead=true: state is not accepted).
// Unknown parameters are ignored.
func parseListQuery(v url.Values, dead bool) (store.Filter, *apiError) {
	var f store.Filter
	if s := v.Get("state"); s != "" {
		if dead {
			return f, errValidation("state", "state: not a filter of the dead-letter list")
		}
		st, err := task.ParseState(s)
		if err != nil {
			return f, errValidation("state", "state: "+err.Error())
		}
		f.State = st
	}
	if dead {
		f.State = task.Dead
	}
	role, ae := parseRoleParam(v)
	if ae != nil {
		return f, ae
	}
	if role != nil {
		f.Role = *role
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxListLimit {
			return f, errValidation("limit", fmt.Sprintf("limit: %q out of range (want 1 to %d)", truncate(l, 32), store.MaxListLimit))
		}
		f.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		if len(c) > maxCursorLen || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return f, errValidation("cursor", "cursor: not one this server returned")
		}
		f.Cursor = c
	}
	return f, nil
}

// parseRoleParam reads the optional role query parameter.
func parseRoleParam(v url.Values) (*task.Role, *apiError) {
	s := v.Get("role")
	if s == "" {
		return nil, nil
	}
	r, err := task.ParseRole(s)
	if err != nil {
		return nil, errValidation("role", "role: "+strings.TrimPrefix(err.Error(), "task: "))
	}
	return &r, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
