package server

import (
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// appendRecallJSON appends the /recall response for res to dst, byte for
// byte what encoding/json (with HTML escaping off) writes for
// newRecallResponse(res), without reflection: /recall is the hot path and
// encoding dominated its handler time. ok is false when a score is not
// finite, which encoding/json would refuse too. An item with a Fragment
// (MovieFragment's bytes, built at model load) is copied, not encoded.
func appendRecallJSON(dst []byte, res recall.Result) (out []byte, ok bool) {
	dst = append(dst, `{"model_version":`...)
	dst = appendJSONString(dst, res.ModelVersion)
	dst = append(dst, `,"backend":`...)
	dst = appendJSONString(dst, res.Backend)
	dst = append(dst, `,"known_user":`...)
	dst = strconv.AppendBool(dst, res.KnownUser)
	dst = append(dst, `,"items":[`...)
	// Every fragment must look like MovieFragment's output, `{…"score":`.
	// The check reads both ends of each fragment before any is copied: the
	// fragments are spread over the heap and, on a busy server, rarely in
	// cache, and these independent loads let their cache misses overlap
	// instead of stalling the copies below one fragment at a time, between
	// float formats. Under load (perf of the server at k = 10) the copies
	// took 2.4 % of its CPU; with this pass, 0.2 %, and the pass 1.5 %.
	var bad byte
	for _, it := range res.Items {
		if f := it.Fragment; f != nil {
			if len(f) == 0 {
				return dst, false
			}
			bad |= (f[0] ^ '{') | (f[len(f)-1] ^ ':')
		}
	}
	if bad != 0 {
		return dst, false
	}
	for i, it := range res.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		if it.Fragment != nil {
			dst = append(dst, it.Fragment...)
		} else {
			dst = appendItemHead(dst, it.MovieID, it.Title, it.Genres, it.Year)
		}
		var fine bool
		if dst, fine = appendJSONFloat32(dst, it.Score); !fine {
			return dst, false
		}
		dst = append(dst, '}')
	}
	dst = append(dst, "]}\n"...)
	return dst, true
}

// MovieFragment returns the start of a movie's /recall item, everything
// before the score's value: {"movie_id":…,"title":…,"genres":[…],"year":…,"score":
// Wire it as recall.Options.MovieFragment and each movie is encoded once
// per model load instead of once per answer (escaping titles was the
// larger part of encoding a /recall answer).
func MovieFragment(m artifact.Movie) []byte {
	return appendItemHead(nil, m.ID, m.Title, m.Genres, m.Year)
}

// appendItemHead appends one /recall item up to its score's value.
func appendItemHead(dst []byte, id movielens.MovieID, title string, genres []string, year int) []byte {
	dst = append(dst, `{"movie_id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"title":`...)
	dst = appendJSONString(dst, title)
	dst = append(dst, `,"genres":[`...)
	for j, g := range genres {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, g)
	}
	dst = append(dst, ']')
	if year != 0 {
		dst = append(dst, `,"year":`...)
		dst = strconv.AppendInt(dst, int64(year), 10)
	}
	return append(dst, `,"score":`...)
}

// appendJSONFloat32 formats f as encoding/json does for a float32.
func appendJSONFloat32(dst []byte, f float32) ([]byte, bool) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(x); abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, x, format, -1, 32)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping off: quotes, backslashes and control characters are
// escaped, invalid UTF-8 becomes U+FFFD, U+2028 and U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// autoContentLength is the size of net/http's response buffer
// (bufferBeforeChunkingSize): a smaller body written before the handler
// returns gets its Content-Length from net/http.
const autoContentLength = 2048

// headerValues are header values shared by every response that sends
// them; net/http never modifies a value slice.
type headerValues struct {
	json, nosniff []string
}

// writeRecall writes a /recall response, encoded without reflection.
func (s *Server) writeRecall(w http.ResponseWriter, r *http.Request, res recall.Result) {
	buf := s.getBuf()
	defer s.putBuf(buf)
	avail := buf.AvailableBuffer()
	b, ok := appendRecallJSON(avail, res)
	if !ok {
		resp := newRecallResponse(res)
		s.writeJSON(w, r, http.StatusOK, "application/json", &resp) // answers with encoding/json's error
		return
	}
	// The headers of writeJSON (no Cache-Control: see there), set without
	// canonicalising keys and with shared values: net/http only reads
	// them. Below its 2 KiB response buffer net/http adds Content-Length
	// itself, without allocating.
	h := w.Header()
	h["Content-Type"] = s.hdr.json
	h["X-Content-Type-Options"] = s.hdr.nosniff
	if len(b) >= autoContentLength {
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) != cap(avail) {
		// The answer outgrew the buffer: keep the grown storage for the
		// next request. (Otherwise b is the buffer's own storage, and a
		// Write would copy the answer onto itself.)
		buf.Write(b)
	}
}
