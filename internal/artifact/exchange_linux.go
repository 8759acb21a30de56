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
