package artifact

import "golang.org/x/sys/unix"

func mountTmpfs(dir string) error { return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m") }

func unmount(dir string) { _ = unix.Unmount(dir, unix.MNT_DETACH) }

func setUmask(mask int) int { return unix.Umask(mask) }

// mountRootKnown reports whether statx tells mount roots here (Linux 5.8).
func mountRootKnown() bool {
	var st unix.Statx_t
	return unix.Statx(unix.AT_FDCWD, "/", 0, unix.STATX_BASIC_STATS, &st) == nil && st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0
}
