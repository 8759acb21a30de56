package artifact

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPublicationLock checks that Save and Rollback wait while another
// process publishes in the same directory, and give up with a clear error
// after their wait. A second open of the directory stands for the other
// process: flock locks belong to open files, not to processes.
func TestPublicationLock(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	version := func() string { t.Helper(); return versionAt(t, dir) }
	saveVersion(t, dir, "v1")
	saveVersion(t, dir, "v2")
	unlock, err := lock(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(dir, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "publishing to "+dir) {
		t.Errorf("lock while held: %v, want an error naming the directory", err)
	}
	rolled := make(chan error, 1)
	go func() {
		_, err := Rollback(dir)
		rolled <- err
	}()
	saved := make(chan error, 1)
	b3 := testBundle(t)
	b3.Manifest.Version = "v3"
	go func() { saved <- Save(dir, b3) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-rolled:
		t.Fatalf("Rollback returned while another process held the lock: %v", err)
	case err := <-saved:
		t.Fatalf("Save returned while another process held the lock: %v", err)
	default:
	}
	if v := version(); v != "v2" {
		t.Errorf("%s published while another process held the lock", v)
	}
	unlock()
	if err := <-rolled; err != nil {
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	// In either order the last publication is at dir and the one before
	// it is the previous.
	prev, err := Load(dir + PreviousSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if got := version() + "/" + prev.Manifest.Version; got != "v3/v1" && got != "v2/v3" {
		t.Errorf("after a rollback and a save: %s (current/previous), want v3/v1 (rolled back, then saved) or v2/v3 (saved, then rolled back)", got)
	}
}
