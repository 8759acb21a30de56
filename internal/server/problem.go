package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// code classifies a failure. describe maps each code to its HTTP status and
// problem title; that one table is the whole status policy.
type code string

const (
	codeMalformed   code = "malformed-json"         // body is not one valid UTF-8 JSON value
	codeInvalid     code = "invalid-request"        // well-formed JSON that breaks the contract
	codeNotFound    code = "not-found"              // no such path
	codeMethod      code = "method-not-allowed"     // path exists, method does not
	codeTooLarge    code = "body-too-large"         // body over Config.BodyLimit
	codeMediaType   code = "unsupported-media-type" // not application/json
	codeInternal    code = "internal"               // a bug; logged at error level
	codeUnavailable code = "not-ready"              // no model loaded, or draining
	codeTimeout     code = "timeout"                // request budget exceeded
	codeReadTimeout code = "request-timeout"        // the body did not arrive within the read timeout
)

func describe(c code) (status int, title string) {
	switch c {
	case codeMalformed:
		return http.StatusBadRequest, "Malformed JSON"
	case codeInvalid:
		return http.StatusBadRequest, "Invalid request"
	case codeNotFound:
		return http.StatusNotFound, "Not found"
	case codeMethod:
		return http.StatusMethodNotAllowed, "Method not allowed"
	case codeTooLarge:
		return http.StatusRequestEntityTooLarge, "Request body too large"
	case codeMediaType:
		return http.StatusUnsupportedMediaType, "Unsupported media type"
	case codeUnavailable:
		return http.StatusServiceUnavailable, "Not ready"
	case codeTimeout:
		return http.StatusGatewayTimeout, "Timeout"
	case codeReadTimeout:
		return http.StatusRequestTimeout, "Request timeout"
	default:
		return http.StatusInternalServerError, "Internal error"
	}
}

// problemTypePrefix makes a code a problem type URI (RFC 9457 §3.1.1).
const problemTypePrefix = "urn:towerrecall:problem:"

// apiError is a failure to answer a request. detail and field are safe to
// show to clients; cause is only logged.
type apiError struct {
	code   code
	field  string // JSON path of the offending member, "" if none
	detail string
	cause  error
}

func (e *apiError) Error() string {
	s := string(e.code)
	if e.field != "" {
		s += " " + e.field
	}
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *apiError) Unwrap() error { return e.cause }

func invalid(field, detail string) *apiError {
	return &apiError{code: codeInvalid, field: field, detail: detail}
}

// problem is the RFC 9457 body.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
}

// fail answers err as a problem: an *apiError as it is, a Recaller error
// after classifying it (see Recaller).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = s.classify(err)
	}
	if ae.code == codeInternal {
		s.logger.Error().
			Str("request_id", middleware.GetReqID(r.Context())).
			Str("path", r.URL.Path).
			Err(err).
			Msg("internal error")
	}
	if ae.code == codeMediaType {
		w.Header().Set("Accept-Post", "application/json")
	}
	s.writeProblem(w, r, ae)
}

// classify maps an error from the Recaller.
func (s *Server) classify(err error) *apiError {
	var re *recall.Error
	var nr interface{ NotReady() bool }
	switch {
	case errors.As(err, &re):
		return &apiError{code: codeInvalid, field: stripIndexes(re.Field), detail: re.Error(), cause: err}
	case errors.As(err, &nr) && nr.NotReady():
		return &apiError{code: codeUnavailable, detail: "no model is loaded", cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{code: codeTimeout, detail: "the request took longer than " + s.cfg.RequestTimeout.String(), cause: err}
	case errors.Is(err, context.Canceled):
		return &apiError{code: codeUnavailable, detail: "the request was canceled", cause: err}
	}
	if _, ok := s.rec.Info(); !ok {
		return &apiError{code: codeUnavailable, detail: "no model is loaded", cause: err}
	}
	return &apiError{code: codeInternal, detail: "internal error", cause: err}
}

// stripIndexes turns a JSON path such as "genres[2]" into the contract's
// field form, "genres"; the index stays in the detail.
func stripIndexes(field string) string {
	if strings.IndexByte(field, '[') < 0 {
		return field
	}
	var b strings.Builder
	depth := 0
	for _, c := range field {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, e *apiError) {
	status, title := describe(e.code)
	p := problem{
		Type:      problemTypePrefix + string(e.code),
		Title:     title,
		Status:    status,
		Detail:    e.detail,
		Instance:  r.URL.Path,
		Field:     e.field,
		RequestID: middleware.GetReqID(r.Context()),
	}
	s.writeJSON(w, r, status, "application/problem+json", &p)
}

// writeJSON encodes v into a buffer and only then writes headers and body,
// so an encoding failure becomes a whole 500 problem, never half a 200.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	buf := s.getBuf()
	defer s.putBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		if _, isProblem := v.(*problem); isProblem {
			// Cannot happen (a problem is strings and an int); do not recurse.
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		s.fail(w, r, &apiError{code: codeInternal, detail: "internal error", cause: err})
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodPost {
		// Answers to POST are never stored by caches unless they say
		// otherwise (RFC 9111, 3), so only GET answers need the header.
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
