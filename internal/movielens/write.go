package movielens

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// WriteML1M writes ds as an ML-1M directory (users.dat, movies.dat,
// ratings.dat, "::"-separated, as LoadDir reads them) under dir, creating
// it. A dataset already there is never overwritten. The files are written
// under temporary names and renamed into place once all three are written,
// so a reader never sees a half-written file and a failed write leaves
// none (nor the directory, if it made it). Titles and genres must not
// contain "::" or a newline, and ratings must be integers 1–5 (Demo's and
// Synth's are).
func WriteML1M(dir string, ds *Dataset) error {
	_, statErr := os.Stat(dir)
	err := writeML1M(dir, ds)
	if err != nil && os.IsNotExist(statErr) {
		os.Remove(dir) // the directory this call made (empty: the files are removed)
	}
	return err
}

func writeML1M(dir string, ds *Dataset) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	for _, l := range []Layout{LayoutML1M, LayoutML100K} { // either layout's dataset
		fs, _ := FilesOf(l)
		for _, name := range []string{fs.Users, fs.Movies, fs.Ratings} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return fmt.Errorf("movielens: write: %s already exists; choose an empty or new directory", filepath.Join(dir, name))
			}
		}
	}
	files, _ := FilesOf(LayoutML1M)
	names := []string{files.Users, files.Movies, files.Ratings}
	occs := occupationNames[:]
	var temps []string // written, renamed into place only when all three are
	defer func() {
		for _, t := range temps {
			os.Remove(t) // gone after the renames
		}
	}()
	tmp, err := writeLines(filepath.Join(dir, files.Users), len(ds.Users), func(b []byte, i int) ([]byte, error) {
		u := ds.Users[i]
		code := slices.Index(occs, u.Occupation)
		if code < 0 {
			return nil, fmt.Errorf("user %d: occupation %q has no ML-1M code", u.ID, u.Occupation)
		}
		return fmt.Appendf(b, "%d::%s::%d::%d::%s\n", u.ID, u.Gender, u.Age, code, u.Zip), nil
	})
	if err != nil {
		return err
	}
	temps = append(temps, tmp)
	tmp, err = writeLines(filepath.Join(dir, files.Movies), len(ds.Movies), func(b []byte, i int) ([]byte, error) {
		m := ds.Movies[i]
		g := strings.Join(m.Genres, "|")
		if strings.Contains(m.Title+g, SepML1M) || strings.ContainsAny(m.Title+g, "\r\n") {
			return nil, fmt.Errorf("movie %d: title or genres contain %q or a newline", m.ID, SepML1M)
		}
		b = strconv.AppendInt(b, int64(m.ID), 10)
		b = append(b, SepML1M...)
		b = append(b, m.Title...)
		b = append(b, SepML1M...)
		b = append(b, g...)
		return append(b, '\n'), nil
	})
	if err != nil {
		return err
	}
	temps = append(temps, tmp)
	tmp, err = writeLines(filepath.Join(dir, files.Ratings), len(ds.Ratings), func(b []byte, i int) ([]byte, error) {
		r := ds.Ratings[i]
		if r.Value != float32(int(r.Value)) || r.Value < 1 || r.Value > 5 {
			return nil, fmt.Errorf("rating %+v is not an integer 1–5", r)
		}
		b = strconv.AppendInt(b, int64(r.User), 10)
		b = append(b, SepML1M...)
		b = strconv.AppendInt(b, int64(r.Movie), 10)
		b = append(b, SepML1M...)
		b = strconv.AppendInt(b, int64(r.Value), 10)
		b = append(b, SepML1M...)
		b = strconv.AppendInt(b, r.Time, 10)
		return append(b, '\n'), nil
	})
	if err != nil {
		return err
	}
	temps = append(temps, tmp)
	for i, name := range names {
		if err := os.Rename(temps[i], filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("movielens: write: %w", err)
		}
	}
	return nil
}

// writeLines writes n lines made by line into a temporary file beside
// path and returns its name.
func writeLines(path string, n int, line func(b []byte, i int) ([]byte, error)) (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("movielens: write: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	var b []byte
	for i := range n {
		if b, err = line(b[:0], i); err != nil {
			return "", fmt.Errorf("movielens: write %s: %w", filepath.Base(path), err)
		}
		if _, err = w.Write(b); err != nil {
			return "", fmt.Errorf("movielens: write: %w", err)
		}
	}
	if err = w.Flush(); err != nil {
		return "", fmt.Errorf("movielens: write: %w", err)
	}
	if err = f.Chmod(0o644); err != nil {
		return "", fmt.Errorf("movielens: write: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("movielens: write: %w", err)
	}
	return f.Name(), nil
}
