package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeJSON reads the request body and decodes it strictly into dst, a
// pointer to a body struct whose members are present[T]:
//
//   - the content type must be application/json (charset utf-8 if any) and
//     the body must not be content-encoded (415);
//   - the body must fit the limit (413), be non-empty, valid UTF-8 (which
//     encoding/json would silently replace) and exactly one JSON object
//     (400 malformed-json, with the position);
//   - every member name must be one of members, spelled exactly and given
//     once (DisallowUnknownFields, then checkMembers for what it lets
//     through: other letter case, repeats, nested objects), and every value
//     must have its type and not be null (400 invalid-request naming the
//     field).
func (s *Server) decodeJSON(r *http.Request, dst any, members *memberSet) *apiError {
	if err := checkContentType(r.Header); err != nil {
		return err
	}
	buf := s.getBuf()
	defer s.putBuf(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge(mbe.Limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &apiError{code: codeReadTimeout, detail: "the request body did not arrive within the server's read timeout", cause: err}
		}
		return &apiError{code: codeMalformed, detail: "could not read the request body", cause: err}
	}
	body := buf.Bytes()
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return &apiError{code: codeMalformed, detail: "the request body is empty; send a JSON object"}
	}
	if !utf8.Valid(body) {
		at := firstInvalidUTF8(body)
		return &apiError{code: codeMalformed, detail: "the request body is not valid UTF-8 " + position(body, at)}
	}
	if body[firstNonSpace(body)] != '{' {
		var raw json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			return syntaxProblem(body, err)
		}
		return &apiError{code: codeMalformed, detail: "the request body must be a JSON object"}
	}

	if fastDecode(body, dst) {
		return nil
	}
	// The general path decides and explains; it starts from a zero body.
	switch d := dst.(type) {
	case *recallBody:
		*d = recallBody{}
	case *scoreBody:
		*d = scoreBody{}
	}
	return decodeGeneral(body, dst, members)
}

// decodeGeneral is the strict decoder for any body: encoding/json with
// unknown fields refused, nothing after the object, and checkMembers for
// what encoding/json lets through. body is valid UTF-8.
func decodeGeneral(body []byte, dst any, members *memberSet) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(body, err)
	}
	end := int(dec.InputOffset())
	if rest := body[end:]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return &apiError{code: codeMalformed, detail: "unexpected data after the JSON object " + position(body, end+firstNonSpace(rest))}
	}
	return checkMembers(body, members)
}

// checkContentType accepts application/json with no parameter other than
// charset=utf-8, and no Content-Encoding but identity. A missing type and
// application/x-www-form-urlencoded, which `curl -d` sends by default, are
// read as JSON too, so that the README's one-line curl examples work; the
// body must still be a JSON object. Every other type is refused.
func checkContentType(h http.Header) *apiError {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return &apiError{code: codeMediaType, detail: "content-encoded request bodies are not supported"}
	}
	ct := h.Get("Content-Type")
	if ct == "application/json" || ct == "" || ct == "application/x-www-form-urlencoded" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &apiError{code: codeMediaType, detail: "Content-Type must be application/json, got " + quote(ct)}
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return &apiError{code: codeMediaType, detail: "Content-Type must be application/json with no parameter but charset=utf-8, got " + quote(ct)}
		}
	}
	return nil
}

// decodeProblem explains an error of encoding/json in terms of the request.
func decodeProblem(body []byte, err error) *apiError {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return &apiError{code: codeMalformed, detail: "the request body must be a JSON object"}
		}
		if te.Value == "null" {
			return invalid(te.Field, te.Field+": null is not allowed (omit an optional member instead)")
		}
		return invalid(te.Field, fmt.Sprintf("%s: expected %s, got %s", te.Field, jsonKind(te.Type), truncate(te.Value, 40)))
	}
	// DisallowUnknownFields reports `json: unknown field "name"` (no type).
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name, uerr := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		if uerr == nil {
			return invalid(name, "unknown member "+quote(name))
		}
	}
	return syntaxProblem(body, err)
}

func syntaxProblem(body []byte, err error) *apiError {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// Offset is the number of bytes read when the error was found: the
		// offending byte is the one before.
		at := max(int(se.Offset)-1, 0)
		return &apiError{code: codeMalformed, detail: "invalid JSON " + position(body, at) + ": " + se.Error()}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &apiError{code: codeMalformed, detail: "invalid JSON: the body ends in the middle of a value"}
	}
	return &apiError{code: codeMalformed, detail: "invalid JSON: " + err.Error()}
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer (in range)"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array of " + jsonKind(t.Elem())
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "a value"
}

// position describes byte offset at of body as line and column, for humans.
func position(body []byte, at int) string {
	at = min(max(at, 0), len(body))
	line := 1 + bytes.Count(body[:at], []byte{'\n'})
	col := at - (bytes.LastIndexByte(body[:at], '\n') + 1) + 1
	return fmt.Sprintf("at line %d, column %d (byte %d)", line, col, at)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return i
		}
	}
	return len(b)
}

// quote shows a client's string in a message, shortened.
func quote(s string) string { return strconv.Quote(truncate(s, 64)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// present is an optional JSON member that, when present, is not null.
// encoding/json leaves a value unchanged on null, so without it {"k": null}
// would pass as "k absent"; the contract rejects null everywhere.
type present[T any] struct {
	set bool
	v   T
}

// UnmarshalJSON receives one syntactically valid JSON value. Scalars are
// parsed directly (a nested json.Unmarshal per member doubled the handler's
// allocations); the result and errors are those of encoding/json.
func (p *present[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		// encoding/json completes Field with the member's path.
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[T]()}
	}
	switch v := any(&p.v).(type) {
	case *int64:
		n, err := parseInt(b)
		if err != nil {
			return err
		}
		*v = n
	case *bool:
		switch string(b) {
		case "true":
			*v = true
		case "false":
			*v = false
		default:
			return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[bool]()}
		}
	case *string:
		if b[0] != '"' {
			return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[string]()}
		}
		if bytes.IndexByte(b, '\\') >= 0 || !utf8.Valid(b) { // escapes, or U+FFFD replacement
			if err := json.Unmarshal(b, v); err != nil {
				return err
			}
		} else {
			*v = string(b[1 : len(b)-1])
		}
	default:
		if err := json.Unmarshal(b, &p.v); err != nil {
			return err
		}
	}
	p.set = true
	return nil
}

// parseInt parses a JSON integer literal as encoding/json does into an int64.
func parseInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[int64]()}
	}
	return n, nil
}

// jsonValueKind describes a JSON value the way UnmarshalTypeError.Value does.
func jsonValueKind(b []byte) string {
	switch b[0] {
	case 'n':
		return "null"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "number " + string(b)
}

// movieID is a movie id in a request array: an integer, never null
// (encoding/json would turn null into 0).
type movieID int64

func (m *movieID) UnmarshalJSON(b []byte) error {
	n, err := parseInt(b)
	if err != nil {
		return err
	}
	*m = movieID(n)
	return nil
}

// unknownMemberError is a member the contract does not define.
type unknownMemberError struct {
	field     string
	duplicate bool
}

func (e *unknownMemberError) Error() string {
	if e.duplicate {
		return "member " + quote(e.field) + " appears more than once"
	}
	return "unknown member " + quote(e.field) + " (member names are case-sensitive)"
}

// memberSet lists the member names an object may have, and for members
// that are objects themselves, theirs.
type memberSet struct {
	names  []string
	nested map[string]*memberSet
}

// checkMembers walks body, which encoding/json has accepted as one JSON
// value, and rejects what DisallowUnknownFields lets through: names that
// match a known member only when case is ignored, repeated names (where
// encoding/json silently keeps the last) and unknown names in nested
// objects.
func checkMembers(body []byte, set *memberSet) *apiError {
	w := memberWalker{data: body}
	if err := w.value(set, ""); err != nil {
		return invalid(err.field, err.Error())
	}
	return nil
}

type memberWalker struct {
	data []byte
	i    int
}

func (w *memberWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

// value walks one value; set is nil where members are not checked.
func (w *memberWalker) value(set *memberSet, path string) *unknownMemberError {
	w.space()
	if w.i >= len(w.data) {
		return nil
	}
	switch w.data[w.i] {
	case '{':
		return w.object(set, path)
	case '[':
		w.i++
		for {
			w.space()
			if w.i >= len(w.data) || w.data[w.i] == ']' {
				w.i++
				return nil
			}
			if w.data[w.i] == ',' {
				w.i++
				continue
			}
			if err := w.value(nil, path); err != nil {
				return err
			}
		}
	case '"':
		w.str()
	default: // number, true, false, null
		for w.i < len(w.data) && !strings.ContainsRune(",]} \t\r\n", rune(w.data[w.i])) {
			w.i++
		}
	}
	return nil
}

func (w *memberWalker) object(set *memberSet, path string) *unknownMemberError {
	w.i++ // '{'
	var seen uint64
	for {
		w.space()
		if w.i >= len(w.data) || w.data[w.i] == '}' {
			w.i++
			return nil
		}
		if w.data[w.i] == ',' {
			w.i++
			continue
		}
		raw := w.str()
		w.space()
		w.i++ // ':'
		var child *memberSet
		childPath := ""
		if set != nil {
			name := string(raw)
			if bytes.IndexByte(raw, '\\') >= 0 {
				var s string
				if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) == nil {
					name = s
				}
			}
			idx := -1
			for j, n := range set.names {
				if n == name {
					idx = j
					break
				}
			}
			if idx < 0 {
				return &unknownMemberError{field: path + name}
			}
			if seen&(1<<idx) != 0 {
				return &unknownMemberError{field: path + name, duplicate: true}
			}
			seen |= 1 << idx
			if child = set.nested[name]; child != nil {
				childPath = path + name + "."
			}
		}
		if err := w.value(child, childPath); err != nil {
			return err
		}
	}
}

// str skips a string and returns its raw contents, escapes included.
func (w *memberWalker) str() []byte {
	w.i++ // opening quote
	start := w.i
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case '\\':
			w.i += 2
		case '"':
			raw := w.data[start:w.i]
			w.i++
			return raw
		default:
			w.i++
		}
	}
	return w.data[start:]
}
