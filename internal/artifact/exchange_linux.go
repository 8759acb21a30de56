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
// swap, Rollback) across processes: flock on dir's parent directory, so
// nothing is left behind, waiting up to wait while another process holds
// it. The kernel releases it when its holder exits: a killed train never
// leaves it held.
func lock(dir string, wait time.Duration) (unlock func(), err error) {
	parent := filepath.Dir(dir)
	f, err := os.Open(parent)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				err = fmt.Errorf("another train, prior or rollback has been publishing in %s for %v (it holds the directory's lock)", parent, wait)
			}
			return nil, err
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
