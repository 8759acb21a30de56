//go:build !unix

package catalog

import "os"

// lock is a no-op where flock(2) is not available.
func lock(*os.File) error { return nil }
