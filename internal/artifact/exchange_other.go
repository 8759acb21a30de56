//go:build !linux

package artifact

import "errors"

// exchange is Linux's renameat2 RENAME_EXCHANGE; elsewhere the caller
// renames in two steps.
func exchange(a, b string) error { return errors.ErrUnsupported }
