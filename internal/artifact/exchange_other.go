//go:build !linux

package artifact

import (
	"errors"
	"time"
)

// lock is Linux's flock; elsewhere publications to one directory must not
// overlap.
func lock(dir string, wait time.Duration) (unlock func(), err error) { return func() {}, nil }

// exchange is Linux's renameat2 RENAME_EXCHANGE; elsewhere the caller
// renames in two steps.
func exchange(a, b string) error { return errors.ErrUnsupported }

// mountPoint is known on Linux only; elsewhere a rename into a mount
// point fails when Save publishes.
func mountPoint(dir string) bool { return false }
