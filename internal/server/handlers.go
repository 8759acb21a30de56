package server

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/towerrecall/towerrecall/internal/recall"
)

func (s *Server) handleRecall(w http.ResponseWriter, r *http.Request) {
	var body recallBody
	if err := s.decodeJSON(r, &body, s.recallMembers); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := body.request()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The items are written into a pooled buffer (recall.Request.Items):
	// one allocation less per answer. Only the buffer's own storage is
	// reused; a slice the Recaller made itself is never kept.
	items := s.items.Get().(*[]recall.Item)
	defer s.items.Put(items)
	req.Items = (*items)[:0]
	res, rerr := s.rec.Recall(r.Context(), req)
	if n := len(res.Items); n > 0 && n <= cap(*items) && &res.Items[0] == &(*items)[:1][0] {
		// Cleared after the answer is written, so that the pool pins no
		// movie of a model that a reload replaces.
		defer clear((*items)[:n])
	}
	if rerr != nil {
		s.fail(w, r, rerr)
		return
	}
	s.metrics.items.Observe(float64(len(res.Items)))
	s.writeRecall(w, r, res)
}

// pooledItems is the capacity of the pooled item buffers: answers up to
// this k reuse one.
const pooledItems = 128

func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	var body scoreBody
	if err := s.decodeJSON(r, &body, s.scoreMembers); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := body.request()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, rerr := s.rec.Score(r.Context(), req)
	if rerr != nil {
		s.fail(w, r, rerr)
		return
	}
	resp := newScoreResponse(res)
	s.writeJSON(w, r, http.StatusOK, "application/json", &resp)
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	info, ok := s.rec.Info()
	if !ok {
		s.fail(w, r, &apiError{code: codeUnavailable, detail: "no model is loaded"})
		return
	}
	resp := newModelResponse(info)
	s.writeJSON(w, r, http.StatusOK, "application/json", &resp)
}

// handleHealthz is liveness: the process answers HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, "application/json", &healthResponse{Status: "ok"})
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
	s.writeJSON(w, r, http.StatusOK, "application/json", &readyResponse{Status: "ready", ModelVersion: info.Version})
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
