#!/bin/sh
# The one place that says how the released binary is built: static (no cgo;
# the image has no libc), reproducible paths (-trimpath), no symbol tables
# (-s -w), and stamped with the git revision when built in a checkout
# (-buildvcs=auto overrides a GOFLAGS=-buildvcs=false; `towerrecall version`
# prints it). The Dockerfile's build stage, `make build` and
# deploy/build-image.sh all run this script, so every image and local build
# has the same binary for the same source and Go version.
#
# Usage: deploy/build-binary.sh OUT   (run from anywhere; GO=... picks the go command)
set -eu
out=${1:?usage: deploy/build-binary.sh OUT}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$(dirname "$0")/.."
CGO_ENABLED=0 exec "${GO:-go}" build -buildvcs=auto -trimpath -ldflags="-s -w" -o "$out" ./cmd/towerrecall
