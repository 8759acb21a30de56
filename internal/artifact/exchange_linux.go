package artifact

import (
	"errors"
	"path/filepath"

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
// volume): no directory can be renamed into its place (EBUSY). statx
// says so for bind mounts too (Linux 5.8); older kernels compare the
// device with the parent's.
func mountPoint(dir string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st); err != nil {
		return false
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false
	}
	return st.Dev_major != unix.Major(parent.Dev) || st.Dev_minor != unix.Minor(parent.Dev)
}
