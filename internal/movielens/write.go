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
// it. Each file is written under a temporary name and renamed into place,
// so a reader never sees a half-written file. Titles and genres must not
// contain "::" or a newline, and ratings must be integers 1–5 (Demo's and
// Synth's are).
func WriteML1M(dir string, ds *Dataset) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	occs := occupationNames[:]
	err := writeLines(filepath.Join(dir, "users.dat"), len(ds.Users), func(b []byte, i int) ([]byte, error) {
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
	err = writeLines(filepath.Join(dir, "movies.dat"), len(ds.Movies), func(b []byte, i int) ([]byte, error) {
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
	return writeLines(filepath.Join(dir, "ratings.dat"), len(ds.Ratings), func(b []byte, i int) ([]byte, error) {
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
}

// writeLines writes n lines made by line to path through a temporary file.
func writeLines(path string, n int, line func(b []byte, i int) ([]byte, error)) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("movielens: write: %w", err)
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
			return fmt.Errorf("movielens: write %s: %w", filepath.Base(path), err)
		}
		if _, err = w.Write(b); err != nil {
			return fmt.Errorf("movielens: write: %w", err)
		}
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("movielens: write: %w", err)
	}
	return nil
}
