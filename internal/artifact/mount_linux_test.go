package artifact

import "golang.org/x/sys/unix"

func mountTmpfs(dir string) error { return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m") }

func unmount(dir string) { _ = unix.Unmount(dir, unix.MNT_DETACH) }

func setUmask(mask int) int { return unix.Umask(mask) }
