package artifact

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lock takes the advisory lock that serialises publications to dir (Save's
// swap, Rollback) across processes: flock on the hidden sibling file
// .<name>.lock (a file opened for writing, so that NFS, which emulates
// flock with byte-range locks, can lock it between nodes), waiting up to
// wait while another process holds it. The kernel releases it when its
// holder exits, so a killed train never leaves it held; the file stays,
// as removing it would let two holders lock different files. Locking is
// best effort: a file another user made (mode 0644) is locked through a
// read-only descriptor, and where it cannot be opened or the file system
// has no locks (an NFS mount with nolock), publications do not wait for
// each other, as before locks existed.
func lock(dir string, wait time.Duration) (unlock func(), err error) {
	name := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		if f, err = os.Open(name); err != nil {
			return func() {}, nil
		}
	}
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another train, prior or rollback has been publishing to %s for %v (it holds %s)", dir, wait, name)
		}
	}
}

// exchange swaps the directories at a and b in one step
// (renameat2 RENAME_EXCHANGE), so that a crash leaves one artifact or the
// other at b, never none. errors.ErrUnsupported where the file system
// cannot (the caller then renames in two steps).
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return errors.ErrUnsupported
	}
	return err
}

// mountPoint reports whether dir is the root of a mounted file system (a
// volume): no directory can be renamed into its place (EBUSY). statx says
// so, bind mounts included, from Linux 5.8; before, false (Save then
// fails when it publishes, naming EBUSY), since comparing devices with
// the parent's would refuse a btrfs subvolume.
func mountPoint(dir string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st); err != nil {
		return false
	}
	return st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
