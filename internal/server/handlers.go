package server

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/towerrecall/towerrecall/internal/recall"
)

func (s *Server) handleRecall(w http.ResponseWriter, r *http.Request) {
	body := recallBody{K: recall.DefaultK}
	if err := decodeJSON(r, &body, s.decodeOpts); err != nil {
		s.fail(w, r, err)
		return
	}
	req, aerr := body.request()
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	res, err := s.rec.Recall(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.items.Observe(float64(len(res.Items)))
	out, err := appendRecall(make([]byte, 0, 128+192*len(res.Items)), res)
	if err != nil {
		s.fail(w, r, &apiError{code: codeInternal, detail: "internal error", cause: err})
		return
	}
	writeBody(w, r, http.StatusOK, "application/json", out)
}

func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	var body scoreBody
	if err := decodeJSON(r, &body, s.decodeOpts); err != nil {
		s.fail(w, r, err)
		return
	}
	req, aerr := body.request()
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	res, err := s.rec.Score(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newScoreResponse(res))
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	info, ok := s.rec.Info()
	if !ok {
		s.fail(w, r, &apiError{code: codeUnavailable, detail: "no model is loaded"})
		return
	}
	s.writeJSON(w, r, http.StatusOK, newModelResponse(info))
}

// handleHealthz is liveness: the process answers HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, statusResponse{Status: "ok"})
}

// handleReadyz is readiness: a model is loaded and the instance is not
// draining.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.fail(w, r, &apiError{code: codeUnavailable, detail: "the instance is draining"})
		return
	}
	info, ok := s.rec.Info()
	if !ok {
		s.fail(w, r, &apiError{code: codeUnavailable, detail: "no model is loaded"})
		return
	}
	s.writeJSON(w, r, http.StatusOK, statusResponse{Status: "ready", ModelVersion: info.Version})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, &apiError{code: codeNotFound, detail: "no route " + quote(r.URL.Path)})
}

// handleMethodNotAllowed answers 405 with the Allow header, which chi only
// sets in its default handler.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if s.mux.Match(chi.NewRouteContext(), m, r.URL.Path) {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 { // chi also lands here for methods it does not know
		s.handleNotFound(w, r)
		return
	}
	allow := strings.Join(allowed, ", ")
	w.Header().Set("Allow", allow)
	s.fail(w, r, &apiError{code: codeMethod, detail: "method " + quote(r.Method) + " is not allowed here; use " + allow})
}
