//go:build unix

package catalog

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, without waiting: two
// processes appending to one journal would overwrite each other's entries.
// Closing f releases it.
func lock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
