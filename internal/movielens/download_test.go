package movielens

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type zipEntry struct {
	name, body string
	mode       fs.FileMode
}

func buildZip(t *testing.T, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ml1mZip(t *testing.T) []byte {
	t.Helper()
	entries := []zipEntry{{name: "ml-1m/", mode: fs.ModeDir | 0o755}, {name: "ml-1m/README", body: "readme"}}
	for name, body := range ml1mFiles() {
		entries = append(entries, zipEntry{name: "ml-1m/" + name, body: body})
	}
	return buildZip(t, entries)
}

// serve serves body and counts requests.
func serve(t *testing.T, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// entries lists dir's names; a dir that does not exist has none.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestDownload(t *testing.T) {
	t.Parallel()
	body := ml1mZip(t)
	srv, n := serve(t, body)
	dir := filepath.Join(t.TempDir(), "data")
	spec := Source{Name: "ml-1m", URL: srv.URL + "/ml-1m.zip", SHA256: sum(body)}
	got, err := Download(context.Background(), srv.Client(), spec, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(dir, "ml-1m") {
		t.Errorf("path %s", got)
	}
	ds, err := LoadDir(got)
	if err != nil || len(ds.Ratings) != 3 {
		t.Fatalf("load downloaded: %v", err)
	}
	if left := entries(t, dir); len(left) != 1 || left[0] != "ml-1m" {
		t.Errorf("left behind: %v", left)
	}
	// Idempotent: no second request.
	if _, err := Download(context.Background(), srv.Client(), spec, dir); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestDownloadFlatZip(t *testing.T) {
	t.Parallel()
	var es []zipEntry
	for name, body := range ml100kFiles() {
		es = append(es, zipEntry{name: name, body: body})
	}
	body := buildZip(t, es)
	srv, _ := serve(t, body)
	dir := t.TempDir()
	got, err := Download(context.Background(), srv.Client(), Source{Name: "ml-100k", URL: srv.URL, SHA256: sum(body)}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := DetectLayout(got); err != nil || l != LayoutML100K {
		t.Fatalf("layout %q %v", l, err)
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	t.Parallel()
	body := ml1mZip(t)
	srv, _ := serve(t, body)
	dir := t.TempDir()
	_, err := Download(context.Background(), srv.Client(), Source{Name: "ml-1m", URL: srv.URL, SHA256: strings.Repeat("0", 64)}, dir)
	if err == nil || !strings.Contains(err.Error(), "download ml-1m: GET "+srv.URL+": not the ml-1m archive") {
		t.Fatalf("error = %v", err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestDownloadUnsafeZips(t *testing.T) {
	t.Parallel()
	good := []zipEntry{{name: "ml-1m/users.dat", body: ml1mFiles()["users.dat"]}}
	tests := []struct {
		name  string
		evil  zipEntry
		limit int64
		err   string
	}{
		{name: "dotdot", evil: zipEntry{name: "ml-1m/../../evil", body: "x"}, err: "unsafe path"},
		{name: "dotdot only", evil: zipEntry{name: "../evil", body: "x"}, err: "unsafe path"},
		{name: "absolute", evil: zipEntry{name: "/tmp/evil", body: "x"}, err: "unsafe path"},
		{name: "backslash", evil: zipEntry{name: `ml-1m\..\..\evil`, body: "x"}, err: "unsafe path"},
		{name: "symlink", evil: zipEntry{name: "ml-1m/link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}, err: "not a regular file"},
		{name: "too big", evil: zipEntry{name: "ml-1m/big", body: strings.Repeat("a", 1<<20)}, limit: 1 << 16, err: "larger than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := buildZip(t, append(append([]zipEntry{}, good...), tt.evil))
			srv, _ := serve(t, body)
			root := t.TempDir()
			dir := filepath.Join(root, "a", "b")
			spec := Source{Name: "ml-1m", URL: srv.URL, SHA256: sum(body)}
			limit := tt.limit
			if limit == 0 {
				limit = maxUnzipBytes
			}
			err := downloadTo(context.Background(), srv.Client(), spec, dir, filepath.Join(dir, "ml-1m"), limit)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			if left := entries(t, dir); len(left) != 0 {
				t.Errorf("left behind in dir: %v", left)
			}
			if left := entries(t, root); len(left) != 0 { // nothing escaped, and the directories made are gone
				t.Errorf("escaped or left: %v", left)
			}
		})
	}
}

func TestDownloadOffline(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dir := t.TempDir()
	_, err := Download(context.Background(), nil, Source{Name: "ml-1m", URL: url, SHA256: strings.Repeat("0", 64)}, dir)
	if err == nil || !strings.Contains(err.Error(), "download ml-1m:") || !strings.Contains(err.Error(), "are you offline? copy the files to "+filepath.Join(dir, "ml-1m")+" manually") {
		t.Fatalf("error = %v", err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// The directories made for the download go too.
	made := filepath.Join(dir, "new", "a", "b")
	if _, err := Download(context.Background(), nil, Source{Name: "ml-1m", URL: url, SHA256: strings.Repeat("0", 64)}, made); err == nil {
		t.Fatal("offline download succeeded")
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestDownloadHTTPError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := Download(context.Background(), srv.Client(), Source{Name: "ml-1m", URL: srv.URL, SHA256: strings.Repeat("0", 64)}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error = %v", err)
	}
}

// TestDownloadKeepsCredentialsOut: a mirror's URL may carry credentials,
// a password (TOWERRECALL_DOWNLOAD_URL=https://user:password@mirror/...)
// or, for an object store's presigned URL, a query (X-Amz-Signature, a SAS
// token's sig); the errors, which end up in the training Job's log, show
// the URL without them (the query's names kept), as net/http's own errors
// show it without a password.
func TestDownloadKeepsCredentialsOut(t *testing.T) {
	t.Parallel()
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	other, _ := serve(t, []byte("not a MovieLens archive"))
	offline := httptest.NewServer(http.NotFoundHandler())
	offline.Close()
	for _, base := range []string{notFound.URL, other.URL, offline.URL} {
		for _, tc := range []struct{ url, shown string }{
			{strings.Replace(base, "http://", "http://mirror:s3cr3t-pass@", 1) + "/ml-1m.zip", "mirror:xxxxx@"},
			{base + "/ml-1m.zip?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=s3cr3t-sig", "/ml-1m.zip?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx"},
		} {
			_, err := Download(context.Background(), nil, Source{Name: "ml-1m", URL: tc.url, SHA256: strings.Repeat("0", 64)}, t.TempDir())
			if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "AKIAEXAMPLE") || !strings.Contains(err.Error(), tc.shown) {
				t.Errorf("error = %v, want one naming the URL as %q", err, tc.shown)
			}
			// Each failed at the source, where a mirror may help.
			if _, ok := errors.AsType[*FetchError](err); !ok {
				t.Errorf("error = %v, want a *FetchError", err)
			}
		}
	}
}

// TestDownloadDiskFull: a download that fails writing the archive failed
// at the disk, not at the source: no "are you offline?", and no
// *FetchError (the CLI would suggest a mirror).
func TestDownloadDiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := mountTmpfs(dir, 64<<10); err != nil {
		if os.Getenv("TOWERRECALL_REQUIRE_SYSTEM") != "" {
			t.Fatalf("cannot mount a tmpfs, and TOWERRECALL_REQUIRE_SYSTEM is set (.ci/run sets it where root can): %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { unmount(dir) })
	srv, _ := serve(t, bytes.Repeat([]byte("x"), 1<<20))
	_, err := Download(context.Background(), srv.Client(), Source{Name: "ml-1m", URL: srv.URL, SHA256: strings.Repeat("0", 64)}, dir)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "offline") {
		t.Fatalf("error = %v, want the disk's, without \"offline\"", err)
	}
	if _, ok := errors.AsType[*FetchError](err); ok {
		t.Errorf("error = %v is a *FetchError", err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ml-1m", "ml-100k"} {
		s, ok := SourceByName(name)
		if !ok || !strings.HasPrefix(s.URL, "https://files.grouplens.org/datasets/movielens/") || len(s.SHA256) != 64 {
			t.Errorf("%s: %+v", name, s)
		}
		if _, err := hex.DecodeString(s.SHA256); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Download(context.Background(), nil, Source{Name: "../x"}, t.TempDir()); err == nil {
		t.Error("bad name accepted")
	}
}

// withTarget returns a new directory whose subdirectory name holds files.
func withTarget(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFilesIn(t, filepath.Join(dir, name), files)
	return dir
}

func TestDownloadIncompleteTarget(t *testing.T) {
	t.Parallel()
	body := ml1mZip(t)
	srv, n := serve(t, body)
	spec := Source{Name: "ml-1m", URL: srv.URL, SHA256: sum(body)}

	// An empty target directory is filled in.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "ml-1m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Download(context.Background(), srv.Client(), spec, dir); err != nil {
		t.Fatal(err)
	}

	// A partial one is reported without touching the network.
	dir = withTarget(t, "ml-1m", map[string]string{"users.dat": ml1mFiles()["users.dat"]})
	before := n.Load()
	_, err := Download(context.Background(), srv.Client(), spec, dir)
	if err == nil || !strings.Contains(err.Error(), "lacks movies.dat") || n.Load() != before {
		t.Fatalf("error = %v, requests %d → %d", err, before, n.Load())
	}
	if _, ok := errors.AsType[*FetchError](err); ok { // local: no mirror would help
		t.Errorf("error = %v is a *FetchError", err)
	}

	// So is one with an empty file: zero bytes are not a dataset.
	files := ml1mFiles()
	files["ratings.dat"] = ""
	dir = withTarget(t, "ml-1m", files)
	if _, err := Download(context.Background(), srv.Client(), spec, dir); err == nil || !strings.Contains(err.Error(), "lacks ratings.dat or it is empty") {
		t.Fatalf("empty ratings.dat: error = %v", err)
	}

	// So is one whose files do not parse (a damaged copy).
	files = ml1mFiles()
	files["users.dat"] = "x\n"
	dir = withTarget(t, "ml-1m", files)
	if _, err := Download(context.Background(), srv.Client(), spec, dir); err == nil || !strings.Contains(err.Error(), "exists but does not load") {
		t.Fatalf("damaged users.dat: error = %v", err)
	}
	files = ml1mFiles()

	// And one holding two datasets says so.
	maps.Copy(files, ml100kFiles())
	dir = withTarget(t, "ml-1m", files)
	if _, err := Download(context.Background(), srv.Client(), spec, dir); err == nil || !strings.Contains(err.Error(), "holds both an ml-1m") {
		t.Fatalf("two datasets: error = %v", err)
	}
}

// TestDownloadOtherDatasetAtTarget: an ml-1m directory that holds the
// ml-100k files is not taken for a finished ml-1m download (train --data
// would have read ml-100k under the ml-1m name).
func TestDownloadOtherDatasetAtTarget(t *testing.T) {
	t.Parallel()
	body := ml1mZip(t)
	srv, n := serve(t, body)
	spec := Source{Name: "ml-1m", URL: srv.URL, SHA256: sum(body)}
	dir := withTarget(t, "ml-1m", ml100kFiles())
	_, err := Download(context.Background(), srv.Client(), spec, dir)
	if err == nil || !strings.Contains(err.Error(), "holds an ml-100k dataset, not ml-1m") || n.Load() != 0 {
		t.Fatalf("error = %v, %d requests", err, n.Load())
	}
}

// TestDownloadInterrupted: a cancelled download says so, without the
// offline hint, and leaves nothing behind.
func TestDownloadInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("PK partial"))
		w.(http.Flusher).Flush()
		cancel()
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := t.TempDir()
	_, err := Download(ctx, srv.Client(), Source{Name: "ml-1m", URL: srv.URL, SHA256: strings.Repeat("0", 64)}, dir)
	if err == nil || !strings.Contains(err.Error(), "context canceled") || strings.Contains(err.Error(), "offline") {
		t.Fatalf("error = %v", err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestDownloadRemovesStaleTemporaries: what a killed download left in the
// directory goes at the next download; a running one's recent files stay.
func TestDownloadRemovesStaleTemporaries(t *testing.T) {
	t.Parallel()
	body := ml1mZip(t)
	srv, _ := serve(t, body)
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{".ml-1m-123.zip", ".ml-1m-unpack-456", ".ml-1m-789.zip"} {
		p := filepath.Join(dir, name)
		var err error
		if strings.Contains(name, "unpack") {
			err = os.MkdirAll(filepath.Join(p, "ml-1m"), 0o755)
		} else {
			err = os.WriteFile(p, []byte("partial"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if name != ".ml-1m-789.zip" { // the fresh one: another download's
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := Download(context.Background(), srv.Client(), Source{Name: "ml-1m", URL: srv.URL, SHA256: sum(body)}, dir); err != nil {
		t.Fatal(err)
	}
	if left := entries(t, dir); !slices.Equal(left, []string{".ml-1m-789.zip", "ml-1m"}) {
		t.Errorf("left: %v", left)
	}
}
