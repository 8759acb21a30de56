//go:build !linux

package artifact

import "errors"

func mountTmpfs(dir string) error { return errors.ErrUnsupported }

func unmount(dir string) {}

func setUmask(mask int) int { return -1 }

func mountRootKnown() bool { return false }
