#!/usr/bin/env bash
# Build the netmesh image with whichever engine this machine has.
#
#   scripts/build-image.sh [TAG]        (default TAG: netmesh:dev; `make image`)
#
# - A working Docker engine (`docker info` answers): plain `docker build`.
# - Otherwise podman (or buildah): the Dockerfile's base image is provided
#   offline-safely when it is not in local storage -- `mmdebstrap` builds the
#   same Debian release from the machine's own apt sources and `podman import`
#   tags it under the FROM name -- and the build runs with the constraints this
#   kind of machine needs (a VM with hybrid cgroups and no container registry):
#   `--isolation chroot --format docker --network host`, with the host's CA
#   bundle mounted read-only so pip inside the build trusts the same CAs.
#
# Environment:
#   NETMESH_ENGINE=docker|podman|buildah   force an engine
#   NETMESH_BASE_TAR=FILE   keep the bootstrapped base here (default:
#                           /var/cache/netmesh/base-<release>-slim.tar)
#   NETMESH_BUILD_ARGS      extra arguments for the build command
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-netmesh:dev}
log() { printf '[build-image] %s\n' "$*" >&2; }

from=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$here/Dockerfile")
# debian:12.11-slim -> docker.io/library/debian:12.11-slim (the name podman resolves)
case "$from" in
  */*/*) full=$from ;;
  */*) full=docker.io/$from ;;
  *) full=docker.io/library/$from ;;
esac

engine=${NETMESH_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  elif command -v buildah >/dev/null; then
    engine=buildah
  else
    log "no container engine: install Docker, or podman/buildah (scripts/install-deps.sh)"; exit 1
  fi
fi
log "engine: $engine, base image: $full, tag: $tag"

if [ "$engine" = docker ]; then
  # shellcheck disable=SC2086
  exec docker build ${NETMESH_BUILD_ARGS:-} -t "$tag" "$here"
fi

# The release the FROM tag names: debian:12.x -> bookworm.
release_of() {
  case "$1" in
    *:12*|*:bookworm*) echo bookworm ;;
    *:13*|*:trixie*) echo trixie ;;
    *) log "cannot map base image $1 to a Debian release"; exit 1 ;;
  esac
}

# An image name in the engine's local storage?
has_image() {
  if [ "$engine" = podman ]; then podman image exists "$1"; else buildah inspect --type image "$1" >/dev/null 2>&1; fi
}

provide_base() {
  if has_image "$full"; then
    log "base image $full present"; return 0
  fi
  if [ "$engine" = podman ] && podman pull -q "$full" >/dev/null 2>&1; then
    log "pulled $full"; return 0
  fi
  command -v mmdebstrap >/dev/null || { log "no $full and no mmdebstrap to build it"; exit 1; }
  release=$(release_of "$full")
  tar=${NETMESH_BASE_TAR:-/var/cache/netmesh/base-$release-slim.tar}
  if [ ! -s "$tar" ]; then
    mkdir -p "$(dirname "$tar")"
    part=${tar%.tar}.part.tar
    log "bootstrapping Debian $release with mmdebstrap -> $tar"
    # Like the Docker Hub image: minbase, merged /usr without the usrmerge package
    # (which pulls in perl), and the "-slim" variant's dpkg excludes (no docs, man
    # pages, locales), which stay in /etc/dpkg/dpkg.cfg.d for the build's installs.
    # ca-certificates is in the base because the host's bundle is mounted over
    # /etc/ssl/certs/ca-certificates.crt during the build (dpkg cannot replace it then).
    mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      "$release" "$part" \
      || { rm -f "$part"; exit 1; }
    mv "$part" "$tar"
  fi
  log "importing $tar as $full"
  if [ "$engine" = podman ]; then
    podman import -q "$tar" "$full" >/dev/null
  else
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    tar -C "$mnt" -xf "$tar"
    buildah umount "$ctr" >/dev/null
    buildah commit -q "$ctr" "$full" >/dev/null
    buildah rm "$ctr" >/dev/null
  fi
}

provide_base
ca=/etc/ssl/certs/ca-certificates.crt
common=(--isolation chroot --format docker --network host -t "$tag")
[ -r "$ca" ] && common+=(-v "$ca:$ca:ro")
# shellcheck disable=SC2086
if [ "$engine" = podman ]; then
  podman build "${common[@]}" ${NETMESH_BUILD_ARGS:-} "$here"
else
  buildah bud "${common[@]}" ${NETMESH_BUILD_ARGS:-} "$here"
fi
log "built $tag"
