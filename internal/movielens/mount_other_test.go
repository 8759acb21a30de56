//go:build !linux

package movielens

import "errors"

func mountTmpfs(dir string, size int) error { return errors.ErrUnsupported }

func unmount(dir string) {}
