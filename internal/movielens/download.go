package movielens

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Source is a downloadable MovieLens archive: a zip whose sha256 is pinned.
type Source struct {
	Name   string // also the directory the archive unpacks to, e.g. "ml-1m"
	URL    string
	SHA256 string // hex
}

// Sources returns the official GroupLens archives. The checksums are the
// one place to update should GroupLens ever republish a file. No test can
// fetch the archives (CI has no network): both were checked against the
// values other projects pin for the same URLs.
func Sources() []Source {
	return []Source{
		{
			Name:   string(LayoutML1M),
			URL:    "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
			SHA256: "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
		},
		{
			Name:   string(LayoutML100K),
			URL:    "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
			SHA256: "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
		},
	}
}

// SourceByName returns the entry of Sources named name.
func SourceByName(name string) (Source, bool) {
	for _, s := range Sources() {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// Limits of Download: the GroupLens archives are a few MB (ml-1m.zip 6 MB,
// 24 MB unpacked), so these only stop a wrong or hostile file.
const (
	maxDownloadBytes = 256 << 20
	maxUnzipBytes    = 1 << 30
	maxUnzipFiles    = 1000
)

// Download fetches spec into dir/spec.Name and returns that path. It
// downloads to a temporary file in dir, verifies the sha256, unzips safely
// (no absolute paths, "..", links or oversized content) and renames the
// result into place, so an interrupted or failed download leaves nothing
// behind. If dir/spec.Name already holds a MovieLens dataset it returns at
// once, without the network. A nil client means http.DefaultClient.
func Download(ctx context.Context, client *http.Client, spec Source, dir string) (string, error) {
	if spec.Name == "" || !filepath.IsLocal(spec.Name) || strings.ContainsAny(spec.Name, `/\`) {
		return "", fmt.Errorf("download: bad source name %q", spec.Name)
	}
	target := filepath.Join(dir, spec.Name)
	switch err := complete(target, Layout(spec.Name)); {
	case err == nil:
		// An existing copy is parsed: a damaged one is not a finished
		// download. (A fresh one was checked against its archive's sum.)
		if _, err := LoadDir(target); err != nil {
			return "", fmt.Errorf("download %s: %s exists but does not load (%w); remove the directory to download again", spec.Name, target, err)
		}
		return target, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("download %s: %w", spec.Name, err)
	}
	if err := downloadTo(ctx, client, spec, dir, target, maxUnzipBytes); err != nil {
		return "", fmt.Errorf("download %s: %w", spec.Name, err)
	}
	return target, nil
}

// FetchError is a download that failed at its source (unreachable, an
// HTTP error, the wrong archive), where a mirror may help; other failures
// are local (the directory, the disk).
type FetchError struct{ Err error }

func (e *FetchError) Error() string { return e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

func downloadTo(ctx context.Context, client *http.Client, spec Source, dir, target string, maxBytes int64) (err error) {
	want, err := hex.DecodeString(spec.SHA256)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("bad pinned sha256 %q", spec.SHA256)
	}
	if client == nil {
		client = http.DefaultClient
	}
	// The directories made for this download go again if it fails (each
	// only if it stayed empty).
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) || filepath.Dir(d) == d {
			break
		}
		made = append(made, d) // deepest first
	}
	defer func() {
		if err != nil {
			for _, d := range made {
				os.Remove(d)
			}
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	removeStale(dir, spec.Name, time.Hour)
	tmp, err := os.CreateTemp(dir, "."+spec.Name+"-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL, nil)
	if err != nil {
		return err
	}
	// A mirror's URL may carry credentials: errors (logged by the
	// training Job) show it without the password, as net/http's do, and
	// without its query's values (a presigned URL's signature).
	shown := ShownURL(req.URL)
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok { // it names the URL (a redirect's, maybe) with its query
			if u, perr := url.Parse(ue.URL); perr == nil {
				ue.URL = ShownURL(u)
			}
		}
		return &FetchError{offline(ctx, err, target)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &FetchError{fmt.Errorf("GET %s: %s (copy the files to %s manually)", shown, resp.Status, target)}
	}
	if n := resp.ContentLength; n > maxDownloadBytes {
		return &FetchError{fmt.Errorf("GET %s: %d bytes, more than the %d a MovieLens archive has", shown, n, maxDownloadBytes)}
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxDownloadBytes+1))
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == tmp.Name() {
		return err // the disk's (full, a quota), not the source's: it names the file
	}
	if err != nil {
		return &FetchError{fmt.Errorf("GET %s: %w", shown, offline(ctx, err, target))}
	}
	if n > maxDownloadBytes {
		return &FetchError{fmt.Errorf("GET %s: larger than %d bytes", shown, maxDownloadBytes)}
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return &FetchError{fmt.Errorf("GET %s: not the %s archive (%d bytes of %s, sha256 %x, want %s)", shown, spec.Name, n, resp.Header.Get("Content-Type"), got, spec.SHA256)}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}

	unpack, err := os.MkdirTemp(dir, "."+spec.Name+"-unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(unpack)
	zr, err := zip.NewReader(tmp, n)
	if err != nil {
		return fmt.Errorf("open zip: %w", err)
	}
	if err := unzip(zr, unpack, maxBytes); err != nil {
		return fmt.Errorf("unzip: %w", err)
	}
	// GroupLens archives hold one top-level directory named like the
	// source; accept files at the top level too.
	src := filepath.Join(unpack, spec.Name)
	if _, err := DetectLayout(src); err != nil {
		src = unpack
		if _, err := DetectLayout(src); err != nil {
			return fmt.Errorf("archive holds no MovieLens dataset under %s/", spec.Name)
		}
	}
	if err := complete(src, Layout(spec.Name)); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := os.Chmod(src, 0o755); err != nil {
		return err
	}
	// The files were synced as written; their directories are synced
	// before the rename and dir after it, so a dataset that complete()
	// accepts after a crash is whole.
	if err := syncDirs(src); err != nil {
		return err
	}
	_ = os.Remove(target) // an empty directory left for us; a full one stays and fails the rename
	if err := os.Rename(src, target); err != nil {
		// Someone else may have finished the same download first.
		if complete(target, Layout(spec.Name)) == nil {
			return nil
		}
		return err
	}
	return syncDir(dir)
}

// ShownURL is u as errors show it: without its password (url.Redacted)
// and with each query value replaced by "xxxxx", names kept (a name
// without a value is hidden too), since a presigned URL's query carries
// its credential (X-Amz-Signature, sig).
func ShownURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Redacted()
	}
	c := *u
	pairs := strings.Split(c.RawQuery, "&")
	for i, p := range pairs {
		if name, _, ok := strings.Cut(p, "="); ok {
			pairs[i] = name + "=xxxxx"
		} else if p != "" {
			pairs[i] = "xxxxx"
		}
	}
	c.RawQuery = strings.Join(pairs, "&")
	return c.Redacted()
}

// removeStale removes the temporary files of downloads of name into dir
// that were killed (a process that exits cleanly removes its own): those
// not modified for longer than age, so a download running beside this one
// keeps its files.
func removeStale(dir, name string, age time.Duration) {
	for _, pattern := range []string{"." + name + "-*.zip", "." + name + "-unpack-*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if st, err := os.Lstat(m); err == nil && time.Since(st.ModTime()) > age {
				_ = os.RemoveAll(m)
			}
		}
	}
}

// offline adds a hint to a failed transfer, unless it was interrupted.
func offline(ctx context.Context, err error, target string) error {
	if ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w (are you offline? copy the files to %s manually)", err, target)
}

// syncDirs fsyncs root and every directory under it.
func syncDirs(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(path)
	})
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// unzip extracts zr under dest, refusing entries that would escape it
// (absolute paths, "..", backslashes), anything but regular files and
// directories, more than maxUnzipFiles entries, and more than maxBytes of
// content in total (counted as written, not as declared).
func unzip(zr *zip.Reader, dest string, maxBytes int64) error {
	if len(zr.File) > maxUnzipFiles {
		return fmt.Errorf("%d entries, more than %d", len(zr.File), maxUnzipFiles)
	}
	var total int64
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if name == "" || strings.Contains(f.Name, `\`) || !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("unsafe path %q", f.Name)
		}
		path := filepath.Join(dest, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("%q is not a regular file (%v)", f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		w, err := extract(f, path, maxBytes-total)
		total += w
		if err != nil {
			return err
		}
	}
	return nil
}

// extract writes one entry to path, at most limit bytes.
func extract(f *zip.File, path string, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, limit+1))
	if err == nil && n <= limit {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", f.Name, err)
	}
	if n > limit {
		return n, errors.New("archive content larger than the limit")
	}
	return n, nil
}

// complete checks that dir holds a dataset of layout want, its files
// present and not empty. A missing or empty dir gives an error wrapping
// os.ErrNotExist; a dir without that dataset or with files missing gives
// another error.
func complete(dir string, want Layout) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return fmt.Errorf("%s is empty: %w", dir, os.ErrNotExist)
	}
	l, err := DetectLayout(dir)
	if err != nil {
		return fmt.Errorf("%w; remove %s or choose another --dir", err, dir)
	}
	if l != want {
		return fmt.Errorf("%s holds an %s dataset, not %s; remove it or choose another --dir", dir, l, want)
	}
	files, _ := FilesOf(l)
	for _, f := range []string{files.Users, files.Movies, files.Ratings} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			return fmt.Errorf("%s exists but lacks %s or it is empty; remove the directory to download again", dir, f)
		}
	}
	return nil
}
