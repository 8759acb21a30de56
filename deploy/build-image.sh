#!/bin/sh
# Builds the container image on a machine with no Docker engine and no
# registry access: podman (or buildah) builds deploy/Containerfile.local,
# FROM scratch, out of a context assembled here — the binary built by
# deploy/build-binary.sh (as the Dockerfile's build stage builds it), the
# configs, the distroless-like /etc files and the host's CA bundle.
#
# Usage: deploy/build-image.sh [TAG]   (default localhost/towerrecall:dev)
# With a Docker engine, `docker build -t towerrecall .` (the Dockerfile) is
# the same image on gcr.io/distroless/static-debian12:nonroot.
set -eu
tag=${1:-localhost/towerrecall:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

"$root/deploy/build-binary.sh" "$ctx/towerrecall"
cp -R "$root/configs" "$ctx/configs"
cp -R "$root/deploy/rootfs" "$ctx/rootfs"
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs" "$ctx/home-nonroot"
chmod 1777 "$ctx/rootfs/tmp"
chmod 0700 "$ctx/home-nonroot"
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
  cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
else
  echo "build-image: no $ca on this machine; the image cannot verify HTTPS (data download)" >&2
fi

if command -v podman >/dev/null 2>&1; then
  podman build ${PODMAN_BUILD_FLAGS:-} -f "$root/deploy/Containerfile.local" -t "$tag" "$ctx"
elif command -v buildah >/dev/null 2>&1; then
  buildah bud ${PODMAN_BUILD_FLAGS:-} -f "$root/deploy/Containerfile.local" -t "$tag" "$ctx"
else
  echo "build-image: neither podman nor buildah is installed (apt-get install podman)" >&2
  exit 1
fi
