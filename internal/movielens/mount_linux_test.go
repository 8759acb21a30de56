package movielens

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes at dir (root only).
func mountTmpfs(dir string, size int) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size))
}

func unmount(dir string) { _ = unix.Unmount(dir, unix.MNT_DETACH) }
