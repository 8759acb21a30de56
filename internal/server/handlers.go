package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/towerrecall/towerrecall/internal/recall"
)

func (s *Server) handleRecall(w http.ResponseWriter, r *http.Request) error {
	// One buffer holds the body, then the answer (decoding copies what it
	// keeps; writeBody copies the answer out), and later requests reuse it;
	// a very large one (k ≳ 300) is not kept.
	buf := s.answers.Get().(*[]byte)
	raw, aerr := readBody(r, *buf)
	if aerr != nil {
		return aerr
	}
	var body recallBody
	if aerr := decodeBody(raw, &body); aerr != nil {
		return aerr
	}
	req, aerr := body.request(s.cfg.MaxRecent)
	if aerr != nil {
		return aerr
	}
	release, err := s.admit(r, int64(req.K))
	if err != nil {
		return err
	}
	defer release() // once the answer is written
	ctx, cancel := s.deadline(r)
	defer cancel()
	res, err := s.rec.Recall(ctx, req)
	if err != nil {
		return err
	}
	s.metrics.items.Observe(float64(len(res.Items)))
	out, err := appendRecall(slices.Grow(raw[:0], 128+192*len(res.Items)), res)
	if err != nil {
		return internalError(err)
	}
	writeBody(w, r, http.StatusOK, "application/json", out)
	if cap(out) <= 64<<10 {
		*buf = out
		s.answers.Put(buf)
	}
	return nil
}

// handleRecallBatch answers several /recall bodies in one request: a
// result or a problem per entry, in order. The request's deadline covers
// the whole batch: entries it leaves unanswered get a timeout problem, and
// if it leaves every entry unanswered the batch is a 504.
func (s *Server) handleRecallBatch(w http.ResponseWriter, r *http.Request) error {
	raw, aerr := readBody(r, nil)
	if aerr != nil {
		return aerr
	}
	var body batchBody
	err := json.Unmarshal(raw, &body, json.RejectUnknownMembers(true))
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok && errors.Is(err, jsontext.ErrDuplicateName) &&
		strings.HasPrefix(string(se.JSONPointer), "/requests/") {
		// A repeated name inside an entry is that entry's problem (its own
		// decoding refuses it), not the batch's; one at the top level,
		// which allowing repeats would let through, still is.
		if name, ok := repeatedMember(raw); ok {
			return duplicateMember(name)
		}
		body = batchBody{}
		err = json.Unmarshal(raw, &body, json.RejectUnknownMembers(true), jsontext.AllowDuplicateNames(true))
	}
	if err != nil {
		return decodeProblem(raw, err)
	}
	if at, ok := nullAt(raw); ok && at == "" {
		return notAnObject()
	} else if ok && at == "/requests" {
		return invalid("requests", "requests: null is not allowed (send 1 to "+fmt.Sprint(s.cfg.BatchMax)+" /recall bodies)")
	}
	if n := len(body.Requests); n == 0 || n > s.cfg.BatchMax {
		return invalid("requests", fmt.Sprintf("requests must list 1 to %d /recall bodies, got %d", s.cfg.BatchMax, n))
	}
	if _, ok := s.rec.Info(); !ok {
		return recall.NoModelError{}
	}
	// Every entry is decoded and checked first, as /recall's body: the
	// batch's weight is its valid entries' k summed, known before any work.
	out := batchResponse{Results: make([]any, len(body.Requests))}
	reqs := make([]recall.Request, len(body.Requests))
	var weight int64
	for i, entry := range body.Requests {
		var eb recallBody
		aerr := decodeBody(entry, &eb)
		if aerr == nil {
			reqs[i], aerr = eb.request(s.cfg.MaxRecent)
		}
		if aerr != nil {
			out.Results[i] = s.problem(r, aerr)
			continue
		}
		weight += int64(reqs[i].K)
	}
	release, err := s.admit(r, weight)
	if err != nil {
		return err
	}
	defer release() // once the answer is written
	ctx, cancel := s.deadline(r)
	defer cancel()
	timedOut := 0         // entries the deadline cut off
	rec := s.rec.Pinned() // one model version for the whole batch
	for i := range body.Requests {
		if out.Results[i] == nil {
			out.Results[i] = s.batchEntry(ctx, r, rec, reqs[i])
		}
		if p, ok := out.Results[i].(problem); ok && p.Status == http.StatusGatewayTimeout {
			timedOut++
		}
	}
	if timedOut == len(body.Requests) && ctx.Err() != nil {
		// Not one entry answered: the batch timed out as a whole (a 504,
		// counted as one, as /recall's; a 503 if the client went away),
		// not a 200 of timeouts.
		return ctx.Err()
	}
	if timedOut > 0 {
		s.metrics.batchTimeouts.Add(float64(timedOut))
		// One line for the batch, not one per entry (up to batch_max
		// lines from one request).
		s.logger.Warn().Str("request_id", middleware.GetReqID(r.Context())).Str("path", r.URL.Path).
			Str("error", "the request took longer than "+s.cfg.RequestTimeout.String()).
			Int("timed_out", timedOut).Int("entries", len(body.Requests)).
			Msg(string(codeTimeout) + " error") // the message of every timeout line
	}
	return writeJSON(w, r, http.StatusOK, out)
}

// batchEntry answers one checked entry of a batch as /recall would.
func (s *Server) batchEntry(ctx context.Context, r *http.Request, rec func(context.Context, recall.Request) (recall.Result, error), req recall.Request) any {
	res, err := rec(ctx, req)
	if err != nil {
		ae := s.classify(err)
		if ae.code == codeTimeout {
			return problemOf(r, ae) // logged once for the batch
		}
		return s.problem(r, ae)
	}
	s.metrics.items.Observe(float64(len(res.Items)))
	return newRecallResponse(res)
}

func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) error {
	var body scoreBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	req, aerr := body.request(s.cfg.MaxRecent)
	if aerr != nil {
		return aerr
	}
	release, err := s.admit(r, int64(len(req.MovieIDs)))
	if err != nil {
		return err
	}
	defer release() // once the answer is written
	// No deadline: at most max_recent_movies + 1,000 movies, one tower
	// pass and a dot product each, nothing that could run long.
	res, err := s.rec.Score(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, newScoreResponse(res))
}

// handleModel answers GET /model. It takes no query parameter: one (a
// ?version= that picks nothing) is refused, as on every API route. The
// probes, /metrics and the explorer's files ignore them instead (see
// TestQueryParamsIgnoredOffTheAPI).
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) error {
	if _, aerr := queryParams(r); aerr != nil {
		return aerr
	}
	info, ok := s.rec.Info()
	if !ok {
		return recall.NoModelError{}
	}
	return writeJSON(w, r, http.StatusOK, newModelResponse(info))
}

// handleHealthz is liveness: the process answers HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, r, http.StatusOK, statusResponse{Status: "ok"})
}

// handleReadyz is readiness: a model is loaded and the instance is not
// draining.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return &apiError{code: codeUnavailable, detail: "the instance is draining", retry: retryAfter}
	}
	info, ok := s.rec.Info()
	if !ok {
		return recall.NoModelError{}
	}
	return writeJSON(w, r, http.StatusOK, statusResponse{Status: "ready", ModelVersion: info.Version})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) error {
	// The path as sent: routes match it undecoded, so /mov%69es is not /movies.
	path := r.URL.EscapedPath()
	detail := "no route " + quote(path)
	if id, ok := strings.CutPrefix(path, "/movies/"); ok && s.cfg.CatalogToken == "" && id != "" && !strings.Contains(id, "/") &&
		(r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		detail += ": catalogue changes are off on this service (no serve.catalog_token is configured)"
	}
	return &apiError{code: codeNotFound, detail: detail}
}

// handleMethodNotAllowed answers 405 with the Allow header, which chi only
// sets in its default handler.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	pattern := ""
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if p := s.mux.Find(chi.NewRouteContext(), m, r.URL.EscapedPath()); p != "" { // as chi routed it
			allowed, pattern = append(allowed, m), p
			if m == http.MethodGet {
				allowed = append(allowed, http.MethodHead) // see GetHead in routes
			}
		}
	}
	if len(allowed) == 0 { // chi also lands here for methods it does not know
		return s.handleNotFound(w, r)
	}
	// The access log and metrics label the 405 by its route.
	chi.RouteContext(r.Context()).RoutePatterns = []string{pattern}
	allow := strings.Join(allowed, ", ")
	w.Header().Set("Allow", allow)
	return &apiError{code: codeMethod, detail: "method " + quote(r.Method) + " is not allowed here; use " + allow}
}
