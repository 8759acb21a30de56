package artifact

import (
	"errors"

	"golang.org/x/sys/unix"
)

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
