// Package feature turns MovieLens users and movies into the integer inputs
// of the towers. It fits vocabularies on training data (every vocabulary has
// an out-of-vocabulary slot 0, so unseen values still encode) and maps the
// human values that clients send (age in years, occupation names, "F"/"M")
// onto them. It sits between movielens and tower in the data flow.
package feature

import (
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// OOV is the index of the out-of-vocabulary slot in every vocabulary.
const OOV int32 = 0

// Field names a feature a tower may use.
type Field string

// The user fields.
const (
	UserIDField     Field = "user_id"
	GenderField     Field = "gender"
	AgeField        Field = "age"
	OccupationField Field = "occupation"
	ZipField        Field = "zip"
	// HistoryField is a bag of the movies the user rated in training
	// (mean-pooled over its own embedding table, whose vocabulary is the
	// rated movies' ids): the YouTube-DNN watch-history feature. A user
	// without history (cold start) gets the OOV row.
	HistoryField Field = "history"
)

// The movie fields.
const (
	MovieIDField Field = "movie_id"
	GenresField  Field = "genres"
	YearField    Field = "year"
	// PopularityField is the movie's number of training ratings in log2
	// buckets: it lets the movie tower place popular movies where users
	// without an id (cold start) will find them.
	PopularityField Field = "popularity"
)

// UserFields lists the user fields of the default towers.
func UserFields() []Field {
	return []Field{UserIDField, GenderField, AgeField, OccupationField, ZipField}
}

// AllUserFields lists every field the user tower can use: UserFields and
// the optional HistoryField.
func AllUserFields() []Field { return append(UserFields(), HistoryField) }

// MovieFields lists the movie fields of the default towers.
func MovieFields() []Field { return []Field{MovieIDField, GenresField, YearField} }

// AllMovieFields lists every field the movie tower can use: MovieFields and
// the optional PopularityField.
func AllMovieFields() []Field { return append(MovieFields(), PopularityField) }

// Encoded is one entity's tower input: for each field of the tower, in tower
// order, the vocabulary indices of its values. Single-valued fields have one
// index; bag fields (genres, history) have one per value and are
// mean-pooled.
type Encoded [][]int32

// Vocab maps string values to dense indices 1..n; 0 is the OOV slot.
type Vocab struct {
	values []string // values[i] has index i+1
	index  map[string]int32
}

// NewVocab builds a vocabulary of the distinct values, in the given order.
func NewVocab(values []string) *Vocab {
	v := &Vocab{index: make(map[string]int32, len(values))}
	for _, s := range values {
		if _, ok := v.index[s]; ok {
			continue
		}
		v.values = append(v.values, s)
		v.index[s] = int32(len(v.values))
	}
	return v
}

// Lookup returns the index of s, or OOV.
func (v *Vocab) Lookup(s string) int32 { return v.index[s] } // missing keys give 0 == OOV

// Has reports whether s is in the vocabulary.
func (v *Vocab) Has(s string) bool { _, ok := v.index[s]; return ok }

// Size is the number of embedding rows the vocabulary needs, OOV included.
func (v *Vocab) Size() int { return len(v.values) + 1 }

// Values returns the known values in index order (index i+1).
func (v *Vocab) Values() []string { return append([]string(nil), v.values...) }

// UserInput is a user as a client or a dataset describes it. Empty strings and
// zero values are "unknown" and encode as OOV.
type UserInput struct {
	UserID     movielens.UserID // 0: unknown (a cold-start user)
	Gender     string           // "F" or "M"
	Age        int              // years; 0 unknown
	Occupation string           // any name CanonicalOccupation accepts
	Zip        string
	// History is the ids of the movies the user rated (the history
	// feature); movies outside the vocabulary are skipped.
	History []string
}

// MovieInput is a movie's encodable description.
type MovieInput struct {
	MovieID string
	Genres  []string
	Year    int
	Ratings int // number of training ratings (the popularity feature)
}

// ZipPrefix is the part of a zip code the zip feature uses: the first three
// characters (the US sectional centre), upper-cased, so a Canadian postal
// code sent as "t8h1n" meets ML-100K's "T8H1N".
func ZipPrefix(zip string) string {
	zip = strings.TrimSpace(zip)
	n := 0
	for i := range zip { // characters, not bytes: a cut rune would be invalid UTF-8
		if n == 3 {
			zip = zip[:i]
			break
		}
		n++
	}
	return strings.ToUpper(zip)
}

// YearBucket is the release-year feature value: 5-year buckets, "" unknown.
func YearBucket(year int) string {
	if year <= 0 {
		return ""
	}
	return strconv.Itoa(year / 5 * 5)
}

// PopularityBucket is the popularity feature value: ⌊log2(ratings)⌋+1, so
// 0 for an unrated movie, 1 for one rating, 2 for 2–3, 3 for 4–7, ...
func PopularityBucket(ratings int) string {
	if ratings <= 0 {
		return "0"
	}
	return strconv.Itoa(bits.Len(uint(ratings)))
}

// AgeValue is the age feature value: the ML-1M bucket of an age in years.
func AgeValue(years int) string {
	if years <= 0 {
		return ""
	}
	return strconv.Itoa(movielens.AgeBucket(years))
}

// FromUser converts a dataset user.
func FromUser(u movielens.User) UserInput {
	return UserInput{UserID: u.ID, Gender: u.Gender, Age: u.Age, Occupation: u.Occupation, Zip: u.Zip}
}

// FromMovie converts a dataset movie.
func FromMovie(m movielens.Movie) MovieInput {
	return MovieInput{MovieID: strconv.Itoa(int(m.ID)), Genres: m.Genres, Year: m.Year}
}

// Encoder holds the vocabularies of every field and the field order of each
// tower. It is immutable after construction and safe for concurrent use.
type Encoder struct {
	UserFields  []Field
	MovieFields []Field
	Vocabs      map[Field]*Vocab
}

// Fit builds the vocabularies: ids from the users and movies that appear in
// the training ratings (others stay OOV so cold start is trained), the other
// fields from every listed user and movie. Values are ordered by first
// appearance in sorted entity order, which makes fitting deterministic.
func Fit(userFields, movieFields []Field, users []movielens.User, movies []movielens.Movie, train []movielens.Rating) (*Encoder, error) {
	if err := checkFields(userFields, AllUserFields()); err != nil {
		return nil, fmt.Errorf("feature: user tower: %w", err)
	}
	if err := checkFields(movieFields, AllMovieFields()); err != nil {
		return nil, fmt.Errorf("feature: movie tower: %w", err)
	}
	ratedU := make(map[movielens.UserID]bool)
	ratedM := make(map[movielens.MovieID]bool)
	counts := make(map[movielens.MovieID]int)
	for _, r := range train {
		ratedU[r.User] = true
		ratedM[r.Movie] = true
		counts[r.Movie]++
	}
	us := append([]movielens.User(nil), users...)
	sort.Slice(us, func(i, j int) bool { return us[i].ID < us[j].ID })
	ms := append([]movielens.Movie(nil), movies...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })

	vals := map[Field][]string{}
	for _, u := range us {
		in := FromUser(u)
		if ratedU[u.ID] {
			vals[UserIDField] = append(vals[UserIDField], strconv.Itoa(int(in.UserID)))
		}
		vals[GenderField] = append(vals[GenderField], in.Gender)
		vals[AgeField] = append(vals[AgeField], AgeValue(in.Age))
		vals[OccupationField] = append(vals[OccupationField], in.Occupation)
		vals[ZipField] = append(vals[ZipField], ZipPrefix(in.Zip))
	}
	for _, m := range ms {
		in := FromMovie(m)
		if ratedM[m.ID] {
			vals[MovieIDField] = append(vals[MovieIDField], in.MovieID)
			vals[HistoryField] = append(vals[HistoryField], in.MovieID)
		}
		vals[GenresField] = append(vals[GenresField], in.Genres...)
		vals[YearField] = append(vals[YearField], YearBucket(in.Year))
		vals[PopularityField] = append(vals[PopularityField], PopularityBucket(counts[m.ID]))
	}
	e := &Encoder{UserFields: userFields, MovieFields: movieFields, Vocabs: map[Field]*Vocab{}}
	for _, f := range append(append([]Field(nil), userFields...), movieFields...) {
		e.Vocabs[f] = NewVocab(nonEmpty(vals[f]))
	}
	return e, nil
}

// NewEncoder rebuilds an encoder from saved vocabularies (see Fit).
func NewEncoder(userFields, movieFields []Field, vocabs map[Field][]string) (*Encoder, error) {
	if err := checkFields(userFields, AllUserFields()); err != nil {
		return nil, fmt.Errorf("feature: user tower: %w", err)
	}
	if err := checkFields(movieFields, AllMovieFields()); err != nil {
		return nil, fmt.Errorf("feature: movie tower: %w", err)
	}
	e := &Encoder{UserFields: userFields, MovieFields: movieFields, Vocabs: map[Field]*Vocab{}}
	for _, f := range append(append([]Field(nil), userFields...), movieFields...) {
		vs, ok := vocabs[f]
		if !ok {
			return nil, fmt.Errorf("feature: no vocabulary for field %q", f)
		}
		e.Vocabs[f] = NewVocab(vs)
	}
	return e, nil
}

// VocabSizes returns the embedding table sizes of a tower's fields, in order.
func (e *Encoder) VocabSizes(fields []Field) []int {
	out := make([]int, len(fields))
	for i, f := range fields {
		out[i] = e.Vocabs[f].Size()
	}
	return out
}

// EncodeUser encodes a user for the user tower. It allocates the result.
func (e *Encoder) EncodeUser(u UserInput) Encoded {
	out := make(Encoded, len(e.UserFields))
	for i, f := range e.UserFields {
		if f == HistoryField {
			out[i] = e.HistoryIndexes(nil, u.History)
			continue
		}
		out[i] = []int32{e.userValue(f, u)}
	}
	return out
}

// HistoryIndexes appends the history-vocabulary indices of the movie ids to
// dst[:0], skipping unknown ids, and returns it; a history with no known
// movie is the OOV bag {OOV}. Without a history field it returns {OOV}.
func (e *Encoder) HistoryIndexes(dst []int32, movieIDs []string) []int32 {
	dst = dst[:0]
	if v := e.Vocabs[HistoryField]; v != nil {
		for _, id := range movieIDs {
			if x := v.Lookup(id); x != OOV {
				dst = append(dst, x)
			}
		}
	}
	if len(dst) == 0 {
		dst = append(dst, OOV)
	}
	return dst
}

// HistoryPosition returns the position of the history field in the user
// tower's fields, or -1.
func (e *Encoder) HistoryPosition() int {
	for i, f := range e.UserFields {
		if f == HistoryField {
			return i
		}
	}
	return -1
}

// UserIndexes writes one index per user field into dst and returns it; it
// does not allocate when dst has room. The history bag is not a single
// index: its slot gets OOV (a user without history), and callers that know
// the user's history replace it (see HistoryIndexes).
func (e *Encoder) UserIndexes(dst []int32, u UserInput) []int32 {
	dst = dst[:0]
	for _, f := range e.UserFields {
		dst = append(dst, e.userValue(f, u))
	}
	return dst
}

func (e *Encoder) userValue(f Field, u UserInput) int32 {
	v := e.Vocabs[f]
	switch f {
	case UserIDField:
		if u.UserID == 0 {
			return OOV
		}
		return v.Lookup(strconv.Itoa(int(u.UserID)))
	case GenderField:
		return v.Lookup(u.Gender)
	case AgeField:
		return v.Lookup(AgeValue(u.Age))
	case OccupationField:
		c, ok := movielens.CanonicalOccupation(u.Occupation)
		if !ok {
			return OOV
		}
		return v.Lookup(c)
	case ZipField:
		return v.Lookup(ZipPrefix(u.Zip))
	}
	return OOV
}

// EncodeMovie encodes a movie for the movie tower.
func (e *Encoder) EncodeMovie(m MovieInput) Encoded {
	out := make(Encoded, len(e.MovieFields))
	for i, f := range e.MovieFields {
		v := e.Vocabs[f]
		switch f {
		case MovieIDField:
			out[i] = []int32{v.Lookup(m.MovieID)}
		case YearField:
			out[i] = []int32{v.Lookup(YearBucket(m.Year))}
		case PopularityField:
			out[i] = []int32{v.Lookup(PopularityBucket(m.Ratings))}
		case GenresField:
			for _, g := range m.Genres {
				out[i] = append(out[i], v.Lookup(g))
			}
			if len(out[i]) == 0 {
				out[i] = []int32{OOV}
			}
		}
	}
	return out
}

func checkFields(got, allowed []Field) error {
	if len(got) == 0 {
		return fmt.Errorf("no features")
	}
	seen := map[Field]bool{}
	for _, f := range got {
		ok := false
		for _, a := range allowed {
			if f == a {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("unknown feature %q (allowed: %v)", f, allowed)
		}
		if seen[f] {
			return fmt.Errorf("feature %q listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

func nonEmpty(in []string) []string {
	out := in[:0:0]
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
