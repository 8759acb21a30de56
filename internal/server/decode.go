package server

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeJSON reads the request body and decodes it strictly into dst, a
// pointer to a body struct:
//
//   - the content type must be application/json (charset utf-8 if any),
//     or, from a client that is not a browser, absent or curl's form type
//     (checkContentType), and the body must not be content-encoded (415);
//   - the body must fit the limit (413), be valid UTF-8 and exactly one JSON
//     object (400 malformed-json, with the position);
//   - every member name must be one of dst's, spelled exactly and given
//     once, and every value must have its type and not be null (400
//     invalid-request naming the field).
//
// It is the one decoding path: json/v2 (github.com/go-json-experiment/json,
// the design of encoding/json/v2) refuses unknown members on request,
// duplicate names and invalid UTF-8 by default, and nullAt refuses null.
func decodeJSON(r *http.Request, dst any) *apiError {
	body, err := readBody(r, nil)
	if err != nil {
		return err
	}
	return decodeBody(body, dst)
}

// readBody reads a request body that decodeJSON's first three rules allow,
// into buf's storage while it fits (nil: a new slice). The routes with a
// body take all of their input from it: a query parameter (?k=3) is refused
// rather than ignored.
func readBody(r *http.Request, buf []byte) ([]byte, *apiError) {
	if r.URL.RawQuery != "" { // no parsing (and no map) on the usual request
		if _, err := queryParams(r); err != nil {
			return nil, err
		}
	}
	if err := checkContentType(r.Header); err != nil {
		return nil, err
	}
	b := bytes.NewBuffer(buf[:0])
	if n := r.ContentLength; n > 0 && n < 64<<10 { // limitBody has refused larger ones
		b.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead spare bytes to see EOF
	}
	if _, err := b.ReadFrom(r.Body); err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(mbe.Limit)
		}
		if ae, ok := errors.AsType[*apiError](err); ok { // shed by reserveBody
			return nil, ae
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &apiError{code: codeReadTimeout, detail: "the request body did not arrive within the server's read timeout", cause: err}
		}
		return nil, &apiError{code: codeMalformed, detail: "could not read the request body", cause: err}
	}
	body := b.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &apiError{code: codeMalformed, detail: "the request body is empty; send a JSON object"}
	}
	if !utf8.Valid(body) {
		return nil, &apiError{code: codeMalformed, detail: "the request body is not valid UTF-8 " + position(body, firstInvalidUTF8(body))}
	}
	return body, nil
}

// decodeBody decodes one JSON object, valid UTF-8, strictly into dst (see
// decodeJSON).
func decodeBody(body []byte, dst any) *apiError {
	if err := json.Unmarshal(body, dst, json.RejectUnknownMembers(true)); err != nil {
		return decodeProblem(body, err)
	}
	if at, ok := nullAt(body); ok {
		if at == "" {
			return notAnObject()
		}
		return invalid(field(at), pathOf(at)+": null is not allowed (send a value, or omit the member if it is optional)")
	}
	return nil
}

// nullAt returns where body, valid JSON, has a null. json/v2, like
// encoding/json, reads null as "zero", so {"k": null} would pass as "k
// absent"; the contract has no nullable member. Bodies without the bytes
// "null" (nearly all) are not walked.
func nullAt(body []byte) (jsontext.Pointer, bool) {
	if !bytes.Contains(body, []byte("null")) {
		return "", false
	}
	_, at, ok := firstToken(body, func(tok jsontext.Token, _ *jsontext.Decoder) bool { return tok.Kind() == 'n' })
	return at, ok
}

// repeatedMember returns a member name that the top-level object of body,
// valid JSON, gives twice.
func repeatedMember(body []byte) (string, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", false
	}
	seen := map[string]bool{}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", false
		}
		name := tok.String()
		if seen[name] {
			return name, true
		}
		seen[name] = true
		if err := dec.SkipValue(); err != nil {
			return "", false
		}
	}
	return "", false
}

// numberAt returns the number at p in body, "" if p is not a number.
func numberAt(body []byte, p jsontext.Pointer) string {
	tok, _, ok := firstToken(body, func(tok jsontext.Token, dec *jsontext.Decoder) bool {
		return tok.Kind() == '0' && dec.StackPointer() == p
	})
	if !ok {
		return ""
	}
	return truncate(tok.String(), 64)
}

// firstToken walks body's tokens to the first that match accepts (the
// decoder says where it is) and returns it and where it is.
func firstToken(body []byte, match func(jsontext.Token, *jsontext.Decoder) bool) (jsontext.Token, jsontext.Pointer, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return jsontext.Token{}, "", false
		}
		if match(tok, dec) {
			return tok, dec.StackPointer(), true
		}
	}
}

// notAnObject is the problem of a body that is JSON but not an object
// (null, an array, a string).
func notAnObject() *apiError {
	return &apiError{code: codeMalformed, detail: "the request body must be a JSON object"}
}

// duplicateMember is the problem of a member named twice in one object.
func duplicateMember(f string) *apiError {
	return invalid(f, "member "+quote(f)+" appears more than once")
}

// decodeProblem explains an error of json.Unmarshal in terms of the request.
func decodeProblem(body []byte, err error) *apiError {
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return duplicateMember(field(se.JSONPointer))
		}
		at := int(se.ByteOffset)
		return &apiError{code: codeMalformed, detail: "invalid JSON " + position(body, at) + ": " + strings.TrimPrefix(se.Err.Error(), "jsontext: ")}
	}
	se, ok := errors.AsType[*json.SemanticError](err)
	if !ok {
		return &apiError{code: codeMalformed, detail: "invalid JSON: " + err.Error()}
	}
	f := field(se.JSONPointer)
	switch {
	case errors.Is(err, json.ErrUnknownName):
		// The pointer ends at the unknown name, which is a member's even
		// when it looks like an index ({"user":{"5":1}} → user.5).
		parent, name := se.JSONPointer.Parent(), se.JSONPointer.LastToken()
		if f = field(parent); f != "" {
			f += "."
		}
		f += name
		return invalid(f, "unknown member "+quote(f)+" (member names are case-sensitive)")
	case f == "":
		return notAnObject()
	}
	want := "a value"
	if se.GoType != nil {
		want = jsonKind(se.GoType.Kind())
	}
	if se.JSONKind == '0' && want == jsonInteger {
		num := numberAt(body, se.JSONPointer) // json/v2's error does not say which number
		if strings.ContainsAny(num, ".eE") {  // 25.0 too: JSON Schema's integer, not json/v2's
			return invalid(f, fmt.Sprintf("%s must be an integer written without a fraction or exponent, got %s", pathOf(se.JSONPointer), num))
		}
		if lo, hi, ok := contractRange(f); ok { // int64's bounds are not the contract's
			return invalid(f, fmt.Sprintf("%s must be between %d and %d, got %s", pathOf(se.JSONPointer), lo, hi, num))
		}
		bound := ""
		if k := se.GoType.Kind(); !strings.HasPrefix(num, "-") && k >= reflect.Int && k <= reflect.Int64 {
			bound = fmt.Sprintf(" (at most %d)", 1<<(se.GoType.Bits()-1)-1)
		}
		return invalid(f, fmt.Sprintf("%s is out of range%s, got %s", pathOf(se.JSONPointer), bound, num))
	}
	got := map[jsontext.Kind]string{'f': "boolean", 't': "boolean", '"': "string", '0': "number", '{': "object", '[': "array"}[se.JSONKind]
	if got == "" {
		got = "a value of another type"
	}
	return invalid(f, fmt.Sprintf("%s: expected %s, got %s", pathOf(se.JSONPointer), want, got))
}

// field is the contract's name of the member a JSON pointer points into,
// without array indexes: /user/age → user.age, /genres/3 → genres.
func field(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && len(parts) > 0 {
			continue
		}
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

// pathOf is the JSON path a pointer names, indexes included: /genres/3 →
// genres[3].
func pathOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// jsonInteger is what jsonKind says an integer member expects.
const jsonInteger = "integer (in range)"

// jsonKind names the JSON type a Go kind decodes from.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return jsonInteger
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	}
	return "a value"
}

// checkContentType accepts application/json with no parameter other than
// charset=utf-8, and no Content-Encoding but identity. A missing type and
// application/x-www-form-urlencoded, which `curl -d` sends by default
// (jQuery adds charset=utf-8), are read as JSON too, so that one-line curl
// examples work; the body must still be a JSON object. Not from a browser
// (an Origin header): there those are the types a page of any origin may
// send without a CORS preflight, and JSON's preflight is what lets the
// service refuse origins it does not list. Every other type is refused.
func checkContentType(h http.Header) *apiError {
	for _, ce := range h.Values("Content-Encoding") { // every field, not the first only
		if ce != "" && !strings.EqualFold(ce, "identity") {
			return &apiError{code: codeMediaType, detail: "content-encoded request bodies are not supported"}
		}
	}
	ct := h.Get("Content-Type")
	if ct == "application/json" {
		return nil
	}
	browser := h.Get("Origin") != ""
	if ct == "" && !browser {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" && (mt != "application/x-www-form-urlencoded" || browser) {
		return &apiError{code: codeMediaType, detail: "Content-Type must be application/json, got " + quote(ct)}
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return &apiError{code: codeMediaType, detail: "Content-Type must be application/json with no parameter but charset=utf-8, got " + quote(ct)}
		}
	}
	return nil
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

// queryParams parses the query string and refuses what the contract does
// not list: unknown or repeated parameters are a 400 naming them, as
// unknown or repeated members of a body are. The first such parameter in
// the query string is named, so a request always gets the same answer.
func queryParams(r *http.Request, known ...string) (url.Values, *apiError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid(malformedParam(r.URL.RawQuery), "the query string is malformed: "+err.Error())
	}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		name, _, _ := strings.Cut(pair, "=")
		name, _ = url.QueryUnescape(name) // ParseQuery has accepted it
		switch {
		case len(known) == 0:
			return nil, invalid(name, "unknown query parameter "+quote(name)+" (this endpoint takes none)")
		case !slices.Contains(known, name):
			return nil, invalid(name, "unknown query parameter "+quote(name)+" (this endpoint takes "+fmt.Sprint(known)+")")
		case len(v[name]) > 1:
			return nil, invalid(name, "query parameter "+quote(name)+" appears more than once")
		}
	}
	return v, nil
}

// malformedParam names the first parameter of a query string that
// url.ParseQuery refuses (bad percent-encoding, a semicolon): its name,
// decoded where it can be.
func malformedParam(raw string) string {
	for pair := range strings.SplitSeq(raw, "&") {
		if _, err := url.ParseQuery(pair); err != nil {
			name, _, _ := strings.Cut(pair, "=")
			name, _, _ = strings.Cut(name, ";")
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			return name
		}
	}
	return ""
}

// intParam reads an optional integer query parameter in [lo, hi].
func intParam(v url.Values, name string, def, lo, hi int) (int, *apiError) {
	raw, ok := v[name]
	if !ok {
		return def, nil
	}
	n, err := plainInt(name, raw[0], int64(lo), int64(hi))
	return int(n), err
}

// plainInt parses s, the path or query parameter name, as an integer in
// [lo, hi] written the one way the contract shows: decimal digits, no
// sign, no leading zero ("+260" and "0260" would name the same resource
// as "260" under other URLs).
func plainInt(name, s string, lo, hi int64) (int64, *apiError) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '0' && len(s) > 1 || strings.TrimLeft(s, "0123456789") != "" || n < lo || n > hi {
		return 0, invalid(name, fmt.Sprintf("%s must be an integer between %d and %d, got %s", name, lo, hi, quote(s)))
	}
	return n, nil
}
