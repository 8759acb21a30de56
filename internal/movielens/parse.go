package movielens

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError locates a problem in a MovieLens file: "ratings.dat:1234: rating
// 7 out of range 1–5".
type ParseError struct {
	File string // base name or path as given to the reader
	Line int    // 1-based
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }

// Separators of the two layouts' ratings files.
const (
	SepML1M   = "::"
	SepML100K = "\t"
)

// ML1MGenres lists the 18 genres of the ML-1M README, in its order.
func ML1MGenres() []string {
	return []string{
		"Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
		"Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
		"Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
	}
}

// ML100KGenres lists the 19 genres of the ML-100K u.genre file, indexed by
// their flag position; "unknown" comes first.
func ML100KGenres() []string {
	return append([]string{UnknownGenre}, ML1MGenres()...)
}

// UnknownGenre is ML-100K's placeholder genre. It is never reported as a
// genre of a movie: a movie flagged only "unknown" has no genres.
const UnknownGenre = "unknown"

// ParseUser1M parses one line of ML-1M users.dat:
// UserID::Gender::Age::Occupation::Zip. Age is a bucket code (1, 18, 25, 35,
// 45, 50, 56) kept as years; the occupation code 0–20 becomes its canonical
// name.
func ParseUser1M(line string) (User, error) {
	var f [5]string
	if err := splitN(line, SepML1M, f[:]); err != nil {
		return User{}, err
	}
	id, err := parseID(f[0], "user id")
	if err != nil {
		return User{}, err
	}
	g, err := parseGender(f[1])
	if err != nil {
		return User{}, err
	}
	age, err := strconv.Atoi(strings.TrimSpace(f[2])) // spaces as the other fields allow them
	if err != nil || !isML1MAge(age) {
		return User{}, fmt.Errorf("age %q is not an ML-1M age code (1, 18, 25, 35, 45, 50, 56)", clip(f[2]))
	}
	code, err := strconv.Atoi(strings.TrimSpace(f[3]))
	if err != nil {
		return User{}, fmt.Errorf("occupation %q is not a number", clip(f[3]))
	}
	occ, ok := OccupationByCode(code)
	if !ok {
		return User{}, fmt.Errorf("occupation code %d out of range 0–%d", code, len(occupationNames)-1)
	}
	zip, err := parseZip(f[4])
	if err != nil {
		return User{}, err
	}
	return User{ID: UserID(id), Gender: g, Age: age, Occupation: occ, Zip: zip}, nil
}

// parseZip returns a zip code as written, without surrounding space,
// decoded from ISO-8859-1 as titles are (a raw byte would reach the
// artifact's JSON as U+FFFD, and training and serving would see two
// zips). One holding a control or format character is a corrupt line: it
// would be stored as the user's feature and served back by /recall, which
// refuses such a zip in a request.
func parseZip(s string) (string, error) {
	z := strings.TrimSpace(latin1ToUTF8(s))
	if strings.IndexFunc(z, hiddenRune) >= 0 {
		return "", fmt.Errorf("zip %q must not contain control or format characters", clip(z))
	}
	return z, nil
}

// ParseMovie1M parses one line of ML-1M movies.dat: MovieID::Title::Genres,
// genres separated by "|". The line is ISO-8859-1 as in the file and is
// decoded to UTF-8; Year comes from a trailing "(1995)" in the title. A
// title cannot hold "::" (none in MovieLens does): a line with another
// field is refused rather than read into the title.
func ParseMovie1M(line string) (Movie, error) {
	if n := strings.Count(line, SepML1M) + 1; n != 3 {
		return Movie{}, fmt.Errorf("want 3 fields separated by %q, got %d", SepML1M, n)
	}
	idS, rest, _ := strings.Cut(line, SepML1M)
	i := strings.LastIndex(rest, SepML1M)
	title, genresS := rest[:i], rest[i+len(SepML1M):]
	id, err := parseID(idS, "movie id")
	if err != nil {
		return Movie{}, err
	}
	title = strings.TrimSpace(latin1ToUTF8(title))
	if title == "" {
		return Movie{}, errors.New("empty title")
	}
	var genres []string
	genresS = strings.TrimSpace(genresS)
	if genresS != "" && genresS != "(no genres listed)" {
		genres = strings.Split(latin1ToUTF8(genresS), "|")
		for j, g := range genres {
			g = strings.TrimSpace(g)
			if g == "" {
				return Movie{}, fmt.Errorf("empty genre in %q", clip(genresS))
			}
			genres[j] = g
		}
	}
	if err := checkMovie(title, genres); err != nil {
		return Movie{}, err
	}
	return Movie{ID: MovieID(id), Title: title, Year: TitleYear(title), Genres: genres}, nil
}

// ParseRating parses one ratings line with the given separator (SepML1M for
// ratings.dat, SepML100K for u.data): UserID sep MovieID sep Rating sep
// Timestamp. The rating must be an integer 1–5 and the timestamp
// non-negative unix seconds.
func ParseRating(line, sep string) (Rating, error) {
	if sep == "" {
		return Rating{}, errors.New("empty separator")
	}
	var f [4]string
	if err := splitN(line, sep, f[:]); err != nil {
		return Rating{}, err
	}
	u, err := parseID(f[0], "user id")
	if err != nil {
		return Rating{}, err
	}
	m, err := parseID(f[1], "movie id")
	if err != nil {
		return Rating{}, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(f[2]))
	if err != nil {
		return Rating{}, fmt.Errorf("rating %q is not an integer", clip(f[2]))
	}
	if v < 1 || v > 5 {
		return Rating{}, fmt.Errorf("rating %d out of range 1–5", v)
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
	if err != nil || ts < 0 || ts > maxTimestamp {
		return Rating{}, fmt.Errorf("timestamp %q is not unix seconds from 0 to %d (the year 9999)", clip(f[3]), maxTimestamp)
	}
	return Rating{User: UserID(u), Movie: MovieID(m), Value: float32(v), Time: ts}, nil
}

// maxTimestamp is 9999-12-31T23:59:59Z: later times cannot be written as
// RFC 3339 (the manifest's prior "now"), so they are refused at parse time
// rather than after training.
const maxTimestamp = 253402300799

// ParseUser100K parses one line of ML-100K u.user: id|age|gender|occupation|zip.
// The occupation is mapped to its canonical name by CanonicalOccupation.
func ParseUser100K(line string) (User, error) {
	var f [5]string
	if err := splitN(line, "|", f[:]); err != nil {
		return User{}, err
	}
	id, err := parseID(f[0], "user id")
	if err != nil {
		return User{}, err
	}
	age, err := strconv.Atoi(strings.TrimSpace(f[1]))
	if err != nil || age < 1 || age > 120 {
		return User{}, fmt.Errorf("age %q is not a number of years 1–120", clip(f[1]))
	}
	g, err := parseGender(f[2])
	if err != nil {
		return User{}, err
	}
	occ, ok := CanonicalOccupation(f[3])
	if !ok {
		return User{}, fmt.Errorf("unknown occupation %q", clip(f[3]))
	}
	zip, err := parseZip(f[4])
	if err != nil {
		return User{}, err
	}
	return User{ID: UserID(id), Gender: g, Age: age, Occupation: occ, Zip: zip}, nil
}

// ParseGenre100K parses one line of ML-100K u.genre: name|index.
func ParseGenre100K(line string) (name string, index int, err error) {
	var f [2]string
	if err := splitN(line, "|", f[:]); err != nil {
		return "", 0, err
	}
	name = strings.TrimSpace(latin1ToUTF8(f[0]))
	if !genreName(name) {
		return "", 0, fmt.Errorf("genre name %q must be 1 to %d characters without control characters", clip(name), MaxGenreLen)
	}
	index, err = strconv.Atoi(strings.TrimSpace(f[1]))
	if err != nil || index < 0 || index >= maxGenres {
		return "", 0, fmt.Errorf("genre index %q is not a number 0–%d", clip(f[1]), maxGenres-1)
	}
	return name, index, nil
}

// maxGenres bounds the genre list of u.genre so that a corrupt file cannot
// make a reader allocate without bound.
const maxGenres = 1024

// ParseMovie100K parses one line of ML-100K u.item:
// id|title|release date|video date|url|flags..., one 0/1 flag per entry of
// genres (ML100KGenres when u.genre is absent). The line is ISO-8859-1 and is
// decoded to UTF-8. The "unknown" genre is dropped. Year comes from the
// title's trailing "(1995)", else from the release date "01-Jan-1995", else
// 0. Empty titles and dates are accepted (u.item has one such movie).
func ParseMovie100K(line string, genres []string) (Movie, error) {
	n := 5 + len(genres)
	if strings.Count(line, "|") != n-1 {
		return Movie{}, fmt.Errorf("want %d fields separated by %q (5 + %d genre flags), got %d",
			n, "|", len(genres), strings.Count(line, "|")+1)
	}
	rest := line
	next := func() string {
		f, r, _ := strings.Cut(rest, "|")
		rest = r
		return f
	}
	id, err := parseID(next(), "movie id")
	if err != nil {
		return Movie{}, err
	}
	title := strings.TrimSpace(latin1ToUTF8(next()))
	release := strings.TrimSpace(next())
	next() // video release date
	next() // IMDb URL
	var gs []string
	for i := range genres {
		switch flag := strings.TrimSpace(next()); flag {
		case "0":
		case "1":
			if !strings.EqualFold(genres[i], UnknownGenre) {
				gs = append(gs, genres[i])
			}
		default:
			return Movie{}, fmt.Errorf("genre flag %d (%s) is %q, want 0 or 1", i, genres[i], clip(flag))
		}
	}
	if err := checkMovie(title, gs); err != nil {
		return Movie{}, err
	}
	year := TitleYear(title)
	if year == 0 {
		year = releaseYear(release)
	}
	return Movie{ID: MovieID(id), Title: title, Year: year, Genres: gs}, nil
}

// TitleYear returns the year of a title ending in "(1995)" (surrounding
// space ignored), or 0 if it has none or one outside MinYear–MaxYear (as
// PUT /movies and the artifact allow).
func TitleYear(title string) int {
	t := strings.TrimSpace(title)
	if len(t) < 6 || t[len(t)-1] != ')' || t[len(t)-6] != '(' {
		return 0
	}
	y, ok := digits4(t[len(t)-5 : len(t)-1])
	if !ok {
		return 0
	}
	return y
}

// releaseYear reads the year of an ML-100K date such as "01-Jan-1995".
func releaseYear(d string) int {
	i := strings.LastIndexByte(d, '-')
	if i < 0 {
		return 0
	}
	y, ok := digits4(d[i+1:])
	if !ok {
		return 0
	}
	return y
}

func digits4(s string) (int, bool) {
	if len(s) != 4 {
		return 0, false
	}
	y := 0
	for i := 0; i < 4; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		y = y*10 + int(c-'0')
	}
	return y, y >= MinYear && y <= MaxYear // else unknown: the catalogue's bounds
}

// splitN splits line into exactly len(dst) fields separated by sep, without
// allocating.
func splitN(line, sep string, dst []string) error {
	rest := line
	for i := range dst {
		if i == len(dst)-1 {
			if strings.Contains(rest, sep) {
				return fmt.Errorf("want %d fields separated by %q, got more", len(dst), sep)
			}
			dst[i] = rest
			return nil
		}
		f, r, ok := strings.Cut(rest, sep)
		if !ok {
			return fmt.Errorf("want %d fields separated by %q, got %d", len(dst), sep, i+1)
		}
		dst[i], rest = f, r
	}
	return nil
}

func parseID(s, what string) (int32, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive 32-bit integer", what, clip(s))
	}
	return int32(v), nil
}

func parseGender(s string) (string, error) {
	switch g := strings.TrimSpace(s); g {
	case "F", "M":
		return g, nil
	case "f", "m":
		return strings.ToUpper(g), nil
	default:
		return "", fmt.Errorf("gender %q is not F or M", clip(s))
	}
}

// isML1MAge reports whether a is an ML-1M age bucket code (the lower bound
// of the bucket, in years).
func isML1MAge(a int) bool {
	switch a {
	case 1, 18, 25, 35, 45, 50, 56:
		return true
	}
	return false
}

// latin1ToUTF8 decodes ISO-8859-1, where every byte is the code point of the
// same value. ASCII input is returned as is, without allocating, and so is
// valid UTF-8 (a file converted to UTF-8 by its user: decoding it again
// turned "é" into "Ã©"); a real Latin-1 title is almost never valid UTF-8.
func latin1ToUTF8(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) || utf8.ValidString(s[i:]) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// clip shortens a value quoted in an error so a corrupt line cannot make the
// message huge.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
