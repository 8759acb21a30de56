package movielens

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// MaxLineBytes is the longest line the readers accept. MovieLens lines are
// at most a few hundred bytes; a longer line means a wrong or corrupt file.
const MaxLineBytes = 64 << 10

// Files names the files of a layout.
type Files struct {
	Users, Movies, Ratings string
	Genres                 string // optional genre list (ML-100K u.genre); "" if none
	Sep                    string // separator of the ratings file
}

// FilesOf returns the file names of a layout.
func FilesOf(l Layout) (Files, bool) {
	switch l {
	case LayoutML1M:
		return Files{Users: "users.dat", Movies: "movies.dat", Ratings: "ratings.dat", Sep: SepML1M}, true
	case LayoutML100K:
		return Files{Users: "u.user", Movies: "u.item", Ratings: "u.data", Genres: "u.genre", Sep: SepML100K}, true
	}
	return Files{}, false
}

// DetectLayout tells which layout dir holds from the files present:
// users.dat means ML-1M, u.user means ML-100K; both is an error.
func DetectLayout(dir string) (Layout, error) {
	var found []Layout
	for _, l := range []Layout{LayoutML1M, LayoutML100K} {
		f, _ := FilesOf(l)
		if st, err := os.Stat(filepath.Join(dir, f.Users)); err == nil && st.Mode().IsRegular() {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 2:
		return "", fmt.Errorf("movielens: %s holds both an ml-1m (users.dat) and an ml-100k (u.user) dataset; keep one per directory", dir)
	}
	if st, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("movielens: %w", err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("movielens: %s is a file, not a directory: pass the dataset's directory (a split file goes to --train)", dir)
	}
	if _, err := os.ReadDir(dir); err != nil { // an unreadable directory hides its files
		return "", fmt.Errorf("movielens: %w", err)
	}
	return "", fmt.Errorf("movielens: %s holds no MovieLens dataset: want users.dat, movies.dat, ratings.dat (ml-1m) or u.user, u.item, u.data (ml-100k)", dir)
}

// LoadDir reads a MovieLens directory (ML-1M or ML-100K layout, detected
// from the files present). Every file must hold at least one line, and
// every rating's user and movie must be in the users and movies files.
func LoadDir(dir string) (*Dataset, error) {
	ds, err := LoadCatalog(dir)
	if err != nil {
		return nil, err
	}
	fs, _ := FilesOf(ds.Layout)
	rated := pairLines{}
	latest := latestTime()
	err = readFile(filepath.Join(dir, fs.Ratings), fs.Ratings, func(n int, line string) error {
		r, err := ParseRating(line, fs.Sep)
		if err != nil {
			return err
		}
		if err := checkRating(r, n, rated, latest, ds); err != nil {
			return err
		}
		ds.Ratings = append(ds.Ratings, r)
		return nil
	})
	if err == nil && len(ds.Ratings) == 0 {
		err = fmt.Errorf("%s: no ratings", fs.Ratings)
	}
	if err != nil {
		return nil, fmt.Errorf("movielens: load %s: %w", dir, err)
	}
	return ds, nil
}

// LoadCatalog reads the users and movies of a MovieLens directory, not its
// ratings: what a server needs to describe users and movies, quickly.
func LoadCatalog(dir string) (*Dataset, error) {
	l, err := DetectLayout(dir)
	if err != nil {
		return nil, err
	}
	fs, _ := FilesOf(l)
	ds := &Dataset{Layout: l}
	if ds.Users, err = readUsers(dir, fs); err != nil {
		return nil, fmt.Errorf("movielens: load %s: %w", dir, err)
	}
	if ds.Movies, err = readMovies(dir, fs); err != nil {
		return nil, fmt.Errorf("movielens: load %s: %w", dir, err)
	}
	switch {
	case len(ds.Users) == 0:
		return nil, fmt.Errorf("movielens: load %s: %s: no users", dir, fs.Users)
	case len(ds.Movies) == 0:
		return nil, fmt.Errorf("movielens: load %s: %s: no movies", dir, fs.Movies)
	}
	return ds, nil
}

func readUsers(dir string, fs Files) ([]User, error) {
	parse := ParseUser1M
	if fs.Users == "u.user" {
		parse = ParseUser100K
	}
	var us []User
	seen := make(map[UserID]int)
	err := readFile(filepath.Join(dir, fs.Users), fs.Users, func(n int, line string) error {
		u, err := parse(line)
		if err != nil {
			return err
		}
		if first, dup := seen[u.ID]; dup {
			return fmt.Errorf("duplicate user id %d (first on line %d)", u.ID, first)
		}
		seen[u.ID] = n
		us = append(us, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(us, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	return us, nil
}

func readMovies(dir string, fs Files) ([]Movie, error) {
	parse := ParseMovie1M
	if fs.Genres != "" {
		genres, err := readGenres(dir, fs.Genres)
		if err != nil {
			return nil, err
		}
		parse = func(line string) (Movie, error) { return ParseMovie100K(line, genres) }
	}
	var ms []Movie
	seen := make(map[MovieID]int)
	// Genre names are case-insensitive (filters, PUT): a genre spelled
	// in two cases is one genre, spelled as its first movie has it, so
	// that it has one embedding row and one name.
	spelling := make(map[string]string)
	err := readFile(filepath.Join(dir, fs.Movies), fs.Movies, func(n int, line string) error {
		m, err := parse(line)
		if err != nil {
			return err
		}
		if first, dup := seen[m.ID]; dup {
			return fmt.Errorf("duplicate movie id %d (first on line %d)", m.ID, first)
		}
		seen[m.ID] = n
		for i, g := range m.Genres {
			if s, ok := spelling[strings.ToLower(g)]; ok {
				m.Genres[i] = s
			} else {
				spelling[strings.ToLower(g)] = g
			}
		}
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b Movie) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}

// readGenres reads u.genre if present, else returns ML100KGenres. The
// indexes must be exactly 0..n-1.
func readGenres(dir, name string) ([]string, error) {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return ML100KGenres(), nil
	}
	var gs []string
	err := readFile(path, name, func(n int, line string) error {
		g, i, err := ParseGenre100K(line)
		if err != nil {
			return err
		}
		for len(gs) <= i {
			gs = append(gs, "")
		}
		if gs[i] != "" {
			return fmt.Errorf("duplicate genre index %d", i)
		}
		for j, h := range gs {
			if strings.EqualFold(g, h) {
				return fmt.Errorf("genre %q repeats index %d's (genre names are case-insensitive)", g, j)
			}
		}
		gs[i] = g
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, g := range gs {
		if g == "" {
			return nil, fmt.Errorf("%s: genre index %d missing", name, i)
		}
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("%s: no genres", name)
	}
	return gs, nil
}

// readFile calls fn for every non-blank line of path; errors are located as
// name:line.
func readFile(path, name string, fn func(n int, line string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return scanLines(f, name, fn)
}

// scanLines calls fn with every non-blank line of r (a trailing "\r" is
// removed) and its 1-based number. Errors are *ParseError.
func scanLines(r io.Reader, name string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // the byte-order mark some editors write
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := fn(n, line); err != nil {
			return &ParseError{File: name, Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", MaxLineBytes)
		}
		return &ParseError{File: name, Line: n + 1, Err: err}
	}
	return nil
}

// ReadRatingsFile reads a ratings file in either layout's format (a split
// file, ratings.dat or u.data), checked against ds as ReadRatings does.
// Errors name the path and line.
func ReadRatingsFile(path string, ds *Dataset) ([]Rating, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("movielens: %w", err)
	}
	defer f.Close()
	return ReadRatings(f, path, ds)
}

// ReadRatings reads ratings from r. The separator, "::" (ML-1M) or a tab
// (ML-100K), is detected from the first non-blank line; every line must use
// it. With ds, every user and movie must be one of ds's (a split file read
// against its dataset). name locates errors ("test.dat:12: ...").
func ReadRatings(r io.Reader, name string, ds *Dataset) ([]Rating, error) {
	var rs []Rating
	sep := ""
	rated := pairLines{}
	latest := latestTime()
	err := scanLines(r, name, func(n int, line string) error {
		if sep == "" {
			switch {
			case strings.Contains(line, SepML1M):
				sep = SepML1M
			case strings.Contains(line, SepML100K):
				sep = SepML100K
			default:
				return errors.New(`cannot detect the separator: want "::" (ml-1m) or a tab (ml-100k)`)
			}
		}
		r, err := ParseRating(line, sep)
		if err != nil {
			return err
		}
		if err := checkRating(r, n, rated, latest, ds); err != nil {
			return err
		}
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("movielens: %w", err)
	}
	return rs, nil
}

// checkRating applies the rules every ratings file shares to r, read on
// line n: one rating per (user, movie) pair (rated remembers the lines), no
// time later than latest and, with ds, a user and movie of ds.
func checkRating(r Rating, n int, rated pairLines, latest int64, ds *Dataset) error {
	if err := rated.add(r, n); err != nil {
		return err
	}
	if r.Time > latest {
		return fmt.Errorf("timestamp %d (%s) is later than the time of reading: a wrong clock or a corrupt line",
			r.Time, time.Unix(r.Time, 0).UTC().Format(time.RFC3339))
	}
	if ds == nil {
		return nil
	}
	_, uok := ds.UserIndex(r.User)
	_, mok := ds.MovieIndex(r.Movie)
	if uok && mok {
		return nil
	}
	return ds.unknown(r)
}

// latestTime is the newest rating time the readers accept: the wall clock
// and a day. A rating from the future would become the popularity prior's
// "now", and every later refresh would be refused as older.
func latestTime() int64 { return time.Now().Add(24 * time.Hour).Unix() }

// unknown explains why r, whose user or movie is not in ds, is refused.
func (ds *Dataset) unknown(r Rating) error {
	files, _ := FilesOf(ds.Layout)
	if _, ok := ds.UserIndex(r.User); !ok {
		return fmt.Errorf("unknown user %d (not in the dataset's %s)", r.User, files.Users)
	}
	return fmt.Errorf("unknown movie %d (not in the dataset's %s)", r.Movie, files.Movies)
}

// pairLines remembers the line of each (user, movie) pair of a ratings
// file: MovieLens has one rating per pair, and a repeated one (a file
// concatenated with itself) would count twice in training and could be
// both seen and a positive in evaluation.
type pairLines map[uint64]int

func (p pairLines) add(r Rating, line int) error {
	k := uint64(uint32(r.User))<<32 | uint64(uint32(r.Movie))
	if first, ok := p[k]; ok {
		return fmt.Errorf("user %d rates movie %d again (first on line %d): one rating per user and movie", r.User, r.Movie, first)
	}
	p[k] = line
	return nil
}

// UserIndex returns the position of user id in ds.Users (sorted by ID).
func (ds *Dataset) UserIndex(id UserID) (int, bool) {
	return slices.BinarySearchFunc(ds.Users, id, func(u User, id UserID) int { return cmp.Compare(u.ID, id) })
}

// MovieIndex returns the position of movie id in ds.Movies (sorted by ID).
func (ds *Dataset) MovieIndex(id MovieID) (int, bool) {
	return slices.BinarySearchFunc(ds.Movies, id, func(m Movie, id MovieID) int { return cmp.Compare(m.ID, id) })
}
