package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// code classifies a failure; problems maps it to its HTTP status and
// problem title, the whole status policy.
type code string

const (
	codeMalformed    code = "malformed-json"         // body is not one valid UTF-8 JSON value
	codeInvalid      code = "invalid-request"        // well-formed JSON that breaks the contract
	codeNotFound     code = "not-found"              // no such path
	codeMethod       code = "method-not-allowed"     // path exists, method does not
	codeTooLarge     code = "body-too-large"         // body over Config.BodyLimit
	codeMediaType    code = "unsupported-media-type" // not application/json
	codeInternal     code = "internal"               // a bug; logged at error level
	codeUnavailable  code = "not-ready"              // no model loaded, or draining
	codeTimeout      code = "timeout"                // request budget exceeded
	codeReadTimeout  code = "request-timeout"        // the body did not arrive within the read timeout
	codeUnauthorized code = "unauthorized"           // a catalogue change without the right bearer token
	codeJournal      code = "journal-unavailable"    // the catalogue journal failed: changes are off until a restart; logged at error level
	codeOverloaded   code = "overloaded"             // the answer items in flight would pass Config.MaxItemsInFlight, or the bodies MaxBodyBytesInFlight: shed at once, Retry-After 1
)

var problems = map[code]struct {
	status int
	title  string
}{
	codeMalformed:    {http.StatusBadRequest, "Malformed JSON"},
	codeInvalid:      {http.StatusBadRequest, "Invalid request"},
	codeNotFound:     {http.StatusNotFound, "Not found"},
	codeMethod:       {http.StatusMethodNotAllowed, "Method not allowed"},
	codeTooLarge:     {http.StatusRequestEntityTooLarge, "Request body too large"},
	codeMediaType:    {http.StatusUnsupportedMediaType, "Unsupported media type"},
	codeInternal:     {http.StatusInternalServerError, "Internal error"},
	codeUnavailable:  {http.StatusServiceUnavailable, "Not ready"},
	codeTimeout:      {http.StatusGatewayTimeout, "Timeout"},
	codeReadTimeout:  {http.StatusRequestTimeout, "Request timeout"},
	codeUnauthorized: {http.StatusUnauthorized, "Unauthorized"},
	codeJournal:      {http.StatusServiceUnavailable, "Catalogue journal unavailable"},
	codeOverloaded:   {http.StatusServiceUnavailable, "Overloaded"},
}

// retryAfter is the Retry-After, in seconds, of a passing state.
const retryAfter = "5"

// problemTypePrefix makes a code a problem type URI (RFC 9457 §3.1.1).
const problemTypePrefix = "urn:towerrecall:problem:"

// apiError is a failure to answer a request. detail and field are safe to
// show to clients; cause is only logged.
type apiError struct {
	code   code
	field  string // JSON path of the offending member, "" if none
	detail string
	cause  error
	// retry is the Retry-After of a passing state, "" for none:
	// retryAfter for no model loaded yet or draining (a model may be
	// published at any moment, another replica answers), "1" for a shed
	// request (it may fit as soon as another answer is written).
	retry string
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

// internalError is a bug: cause is logged, the client reads "internal error".
func internalError(cause error) *apiError {
	return &apiError{code: codeInternal, detail: "internal error", cause: cause}
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

// fail answers err as a problem: an *apiError as it is, an error of the
// Recaller after classifying it (see Recaller). Nothing must have been
// written yet.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae, ok := errors.AsType[*apiError](err)
	if !ok {
		ae = s.classify(err)
	}
	if ae.code == codeMediaType {
		w.Header().Set("Accept-Post", "application/json")
	}
	if ae.retry != "" {
		w.Header().Set("Retry-After", ae.retry)
	}
	p := s.problem(r, ae)
	body, _ := json.Marshal(p) // valid UTF-8 strings and an int: cannot fail
	writeBody(w, r, p.Status, "application/problem+json", body)
}

// classify maps an error of the Recaller.
func (s *Server) classify(err error) *apiError {
	if ue, ok := errors.AsType[*recall.UnknownMovieError](err); ok {
		return &apiError{code: codeNotFound, field: "movie_id", detail: ue.Error(), cause: err}
	}
	if re, ok := errors.AsType[*recall.Error](err); ok {
		f, _, _ := strings.Cut(re.Field, "[") // "genres[2]" names member genres
		return &apiError{code: codeInvalid, field: f, detail: re.Error(), cause: err}
	}
	switch {
	case errors.As(err, new(recall.ReadOnlyError)):
		return &apiError{code: codeUnavailable, detail: "catalogue changes are off on this instance", cause: err}
	case errors.As(err, new(*recall.JournalError)) && errors.Is(err, catalog.ErrInDoubt):
		return &apiError{code: codeJournal, detail: "the catalogue journal failed and could not be repaired, so this change may or may not be applied after the server restarts (check GET /movies then); catalogue changes are off until the restart (its log has the cause)", cause: err}
	case errors.As(err, new(*recall.JournalError)):
		return &apiError{code: codeJournal, detail: "the catalogue journal could not be written, so the change was not made; catalogue changes are off until the server restarts (its log has the cause)", cause: err}
	case errors.As(err, new(recall.NoModelError)):
		return &apiError{code: codeUnavailable, detail: "no model is loaded", cause: err, retry: retryAfter}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{code: codeTimeout, detail: "the request took longer than " + s.cfg.RequestTimeout.String(), cause: err}
	case errors.Is(err, context.Canceled):
		return &apiError{code: codeUnavailable, detail: "the request was canceled", cause: err}
	}
	return internalError(err)
}

// maxField is the longest problem field and instance, and logged path, in
// bytes: a longer one (a client's 100 KB member name or path) is cut there
// and ends with "…".
const maxField = 256

// problem is the RFC 9457 body for e, a failure of request r.
func (s *Server) problem(r *http.Request, e *apiError) problem {
	var ev *zerolog.Event // the service's own failures; a client's are the access log's
	switch e.code {
	case codeInternal, codeJournal:
		ev = s.logger.Error()
	case codeTimeout: // the service's own slowness (a batch entry's too)
		ev = s.logger.Warn()
	}
	if ev != nil {
		ev.Str("request_id", middleware.GetReqID(r.Context())).Str("path", r.URL.Path).Err(e).Msg(string(e.code) + " error")
	}
	return problemOf(r, e)
}

// problemOf is problem without the log line: a batch's timed-out entries
// are logged once for the batch (see handleRecallBatch).
func problemOf(r *http.Request, e *apiError) problem {
	d := problems[e.code]
	// A request can carry bytes that are not UTF-8 (GET /%FF, a query
	// parameter's name): the instance is the path as sent, percent-encoded,
	// and other text from the request is made valid, so the problem
	// always encodes.
	return problem{
		Type:      problemTypePrefix + string(e.code),
		Title:     d.title,
		Status:    d.status,
		Detail:    strings.ToValidUTF8(e.detail, "\uFFFD"),
		Instance:  truncate(r.URL.EscapedPath(), maxField),
		Field:     truncate(strings.ToValidUTF8(e.field, "\uFFFD"), maxField), // a member name is the client's
		RequestID: middleware.GetReqID(r.Context()),
	}
}

// writeJSON encodes v and only then writes headers and body, so an encoding
// failure is returned (to be answered as a whole 500 problem), never half a
// 200.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) error {
	body, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		return internalError(err)
	}
	writeBody(w, r, status, "application/json", body)
	return nil
}

var newline = []byte{'\n'}

// writeBody writes a whole encoded answer with its headers, and a newline
// (written on its own: appending it could copy an answer of megabytes).
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodPost {
		// Answers to POST are never stored by caches unless they say
		// otherwise (RFC 9111, 3), so only GET answers need the header.
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	if _, err := w.Write(body); err == nil {
		_, _ = w.Write(newline)
	}
}
