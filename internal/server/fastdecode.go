package server

import (
	"strconv"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// The fast path of request decoding. Nearly every body a client sends is
// well-formed: known member names, each once, the right JSON types, strings
// without escapes. fastDecode parses exactly those in one pass with no
// reflection. Anything else — an unknown, misspelt or repeated member, a
// null, a wrong type, an escape sequence, a number with a fraction or an
// exponent, invalid JSON — makes it give up, and decodeJSON runs the strict
// general decoder, which accepts or explains. So the fast path never decides
// an error, and what it accepts is decoded exactly as the general decoder
// would (FuzzFastDecode checks both against each other).

// fastDecode decodes body into dst (a *recallBody or *scoreBody) and
// reports whether it could. On false, dst may be partly written.
func fastDecode(body []byte, dst any) bool {
	p := fastParser{b: body}
	var ok bool
	switch d := dst.(type) {
	case *recallBody:
		ok = p.recall(d)
	case *scoreBody:
		ok = p.score(d)
	default:
		return false
	}
	if !ok {
		return false
	}
	p.space()
	return p.i == len(p.b)
}

// fastParser reads JSON from b at i. Its methods return false where the
// fast path gives up.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// next skips space and consumes c if it comes next.
func (p *fastParser) next(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling member for each name (without quotes)
// with the parser at its value. Names must be plain strings; member returns
// false to give up (unknown or repeated name, bad value).
func (p *fastParser) object(member func(name []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		name, ok := p.rawBytes()
		if !ok || !p.next(':') || !member(name) {
			return false
		}
		if p.next(',') {
			continue
		}
		return p.next('}')
	}
}

// rawBytes reads a string with no escapes and no control characters and
// returns its contents, aliasing the body (which is valid UTF-8, checked
// before). Member names stay bytes: switching on string(name) does not
// allocate.
func (p *fastParser) rawBytes() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// rawString is rawBytes as a string of its own (the body's buffer is
// reused).
func (p *fastParser) rawString() (string, bool) {
	b, ok := p.rawBytes()
	return string(b), ok
}

// integer reads -?(0|[1-9][0-9]*) that fits an int64 and is not followed by
// a fraction, an exponent or another digit.
func (p *fastParser) integer() (int64, bool) {
	p.space()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 1 && p.b[digits] == '0' {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return v, err == nil
}

func (p *fastParser) boolean() (bool, bool) {
	p.space()
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// array reads an array, calling elem for each element. An empty array is
// fine: the callers start from an empty, non-nil slice as encoding/json does.
func (p *fastParser) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	if p.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.next(',') {
			continue
		}
		return p.next(']')
	}
}

// arrayMember reads an array member whose elements elem parses; a repeated
// member gives up. It starts from an empty, non-nil slice, as encoding/json.
func arrayMember[T any](p *fastParser, dst *present[[]T], elem func() (T, bool)) bool {
	if dst.set {
		return false
	}
	vs := []T{}
	ok := p.array(func() bool {
		v, ok := elem()
		vs = append(vs, v)
		return ok
	})
	*dst = present[[]T]{set: true, v: vs}
	return ok
}

func (p *fastParser) movieIDs(dst *present[[]movieID]) bool {
	return arrayMember(p, dst, func() (movieID, bool) {
		v, ok := p.integer()
		return movieID(v), ok
	})
}

func (p *fastParser) strings(dst *present[[]string]) bool {
	return arrayMember(p, dst, p.rawString)
}

func (p *fastParser) int64Member(dst *present[int64]) bool {
	v, ok := p.integer()
	if !ok || dst.set {
		return false
	}
	*dst = present[int64]{set: true, v: v}
	return true
}

func (p *fastParser) stringMember(dst *present[string]) bool {
	return p.stringMemberAs(dst, func(b []byte) string { return string(b) })
}

// stringMemberAs reads a string member whose value conv makes from the
// body's bytes (conv must copy them or return a string of its own).
func (p *fastParser) stringMemberAs(dst *present[string], conv func([]byte) string) bool {
	b, ok := p.rawBytes()
	if !ok || dst.set {
		return false
	}
	*dst = present[string]{set: true, v: conv(b)}
	return true
}

// occupationString is the canonical occupation spelt as b, the package
// constant rather than a copy (clients mostly send canonical names), or a
// copy of b.
func occupationString(b []byte) string {
	if n := movielens.OccupationName(b); n != "" {
		return n
	}
	return string(b)
}

func (p *fastParser) user(dst *present[userBody]) bool {
	if dst.set {
		return false
	}
	dst.set = true
	u := &dst.v
	return p.object(func(name []byte) bool {
		switch string(name) {
		case "user_id":
			return p.int64Member(&u.UserID)
		case "gender":
			return p.stringMember(&u.Gender)
		case "age":
			return p.int64Member(&u.Age)
		case "occupation":
			return p.stringMemberAs(&u.Occupation, occupationString)
		case "zip":
			return p.stringMember(&u.Zip)
		}
		return false
	})
}

func (p *fastParser) recall(b *recallBody) bool {
	return p.object(func(name []byte) bool {
		switch string(name) {
		case "user":
			return p.user(&b.User)
		case "k":
			return p.int64Member(&b.K)
		case "offset":
			return p.int64Member(&b.Offset)
		case "exclude_seen":
			v, ok := p.boolean()
			if !ok || b.ExcludeSeen.set {
				return false
			}
			b.ExcludeSeen = present[bool]{set: true, v: v}
			return true
		case "exclude_movie_ids":
			return p.movieIDs(&b.ExcludeMovieIDs)
		case "genres":
			return p.strings(&b.Genres)
		}
		return false
	})
}

func (p *fastParser) score(b *scoreBody) bool {
	return p.object(func(name []byte) bool {
		switch string(name) {
		case "user":
			return p.user(&b.User)
		case "movie_ids":
			return p.movieIDs(&b.MovieIDs)
		}
		return false
	})
}
