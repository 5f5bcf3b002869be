package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Error codes of the JSON error body (docs/contracts.md).
const (
	CodeBadJSON          = "bad_json"               // 400
	CodeUnauthorized     = "unauthorized"           // 401
	CodeForbidden        = "forbidden"              // 403
	CodeNotFound         = "not_found"              // 404
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeConflict         = "conflict"               // 409
	CodeTooLarge         = "too_large"              // 413
	CodeUnsupportedMedia = "unsupported_media_type" // 415
	CodeValidation       = "validation"             // 422
	CodeOverloaded       = "overloaded"             // 429
	CodeInternal         = "internal"               // 500
	CodeUnavailable      = "unavailable"            // 503
)

// apiError is an error answer: status, code, message, the offending field,
// Retry-After for 429/503, and the rejection reason for metrics.
type apiError struct {
	Status     int
	Code       string
	Message    string
	Field      string
	RetryAfter time.Duration
	Reason     string // metrics.Reason…; "" when not a submission outcome
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// errorBody is the wire form: {"error":{"code","message","field"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func errBadJSON(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadJSON, Message: fmt.Sprintf(format, args...), Reason: metrics.ReasonInvalid}
}

func errValidation(field, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Code: CodeValidation, Message: msg, Field: field, Reason: metrics.ReasonInvalid}
}

// errField turns a *task.FieldError into a 422, optionally prefixing its
// field (e.g. "tasks[3].").
func errField(fe *task.FieldError, prefix string) *apiError {
	return errValidation(prefix+fe.Field, prefix+fe.Error())
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func errConflict(msg string) *apiError {
	return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: msg, Reason: metrics.ReasonConflict}
}

func errTooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
		Message: fmt.Sprintf("request body larger than %d bytes", limit), Reason: metrics.ReasonTooLarge}
}

func errUnsupportedMedia(got string) *apiError {
	return &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
		Message: fmt.Sprintf("Content-Type %q: want application/json", got), Reason: metrics.ReasonInvalid}
}

func errOverloaded(msg string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: CodeOverloaded, Message: msg, RetryAfter: retry, Reason: metrics.ReasonOverloaded}
}

func errUnavailable(reason, msg string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: msg, RetryAfter: retry, Reason: reason}
}

// errBackend answers a failed Redis or PostgreSQL call: 503, retry soon.
func errBackend(what string, err error) *apiError {
	return errUnavailable(metrics.ReasonError, what+": "+err.Error(), time.Second)
}

func errUnauthorized() *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthorized,
		Message: "missing or wrong bearer token (Authorization: Bearer <MESH_API_TOKEN>)"}
}

func errForbidden(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: msg}
}

func errMethod(method, allow string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
		Message: fmt.Sprintf("method %s not allowed here (allowed: %s)", method, allow)}
}

func errInternal(msg string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: msg, Reason: metrics.ReasonError}
}

// asAPIError maps an error of the store or the queue to an answer: field
// errors → 422, not found → 404, conflicts → 409, anything else → 503.
func asAPIError(what string, err error) *apiError {
	var ae *apiError
	var fe *task.FieldError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &fe):
		return errField(fe, "")
	case errors.Is(err, task.ErrNotFound):
		return errNotFound("%s: not found", what)
	case errors.Is(err, task.ErrConflict):
		return errConflict(err.Error())
	}
	return errBackend(what, err)
}

// writeError sends e as the JSON error body.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentmesh"`)
	}
	writeJSON(w, e.Status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
