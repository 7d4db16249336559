#!/usr/bin/env bash
# Install netmesh's system dependencies and create the project venv.
#
# One script for the Makefile, CI and the Dockerfile, so that all three
# install the same things. Idempotent: run it as often as you like.
#
#   scripts/install-deps.sh            system packages + kernel headers + venv
#   scripts/install-deps.sh --system   system packages + kernel headers only
#   scripts/install-deps.sh --venv     venv only
#
# Environment:
#   VENV            venv directory (default: .venv in the repository)
#   NETMESH_EXTRAS  pip extras to install (default: test,dev)
#   NETMESH_NO_HEADERS=1   skip the kernel-headers fallback (image builds)
#   NETMESH_PACKAGES=runtime  only what the agent and collector need at run time
#                          plus what builds their venv (the Dockerfile's build
#                          stage): no Prometheus, Chromium or lab tools, no
#                          tracefs mounts
#   NETMESH_PACKAGES=image    runtime without the venv builders (python3-venv,
#                          python3-pip): the Dockerfile's final stage
#   NETMESH_CHECKOV_VENV=DIR  with --checkov: where checkov's own venv goes
#                          (default: .venv/checkov)
#
#   scripts/install-deps.sh --checkov  the checkov scanner in a venv of its own
#                          (its pins conflict with the project's; tests/manifests)
#   scripts/install-deps.sh --helm     only the pinned helm (also part of the
#                          default run unless NETMESH_PACKAGES=runtime)
#
# helm (tests/manifests/test_helm.py, the chart in charts/netmesh) is built from
# source with `go install` through the Go module proxy (no registry ships it):
#   NETMESH_BIN=DIR        where helm goes (default: /usr/local/lib/netmesh/bin,
#                          where the tests look for it)
#   NETMESH_GO_CACHE=DIR   Go module and build caches (default:
#                          /var/cache/netmesh/go; set a fresh one to time a cold build)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
extras=${NETMESH_EXTRAS:-test,dev}
profile=${NETMESH_PACKAGES:-all}
do_system=1
do_venv=1
do_checkov=0
do_helm=1
case "${1:-}" in
  --system) do_venv=0 ;;
  --venv) do_system=0; do_helm=0 ;;
  --checkov) do_system=0; do_venv=0; do_helm=0; do_checkov=1 ;;
  --helm) do_system=0; do_venv=0 ;;
  "") ;;
  *) echo "usage: $0 [--system|--venv|--checkov|--helm]" >&2; exit 2 ;;
esac
case "$profile" in
  all|runtime|image) ;;
  *) echo "NETMESH_PACKAGES must be all, runtime or image, not $profile" >&2; exit 2 ;;
esac

log() { printf '[install-deps] %s\n' "$*" >&2; }

packages=(
  iperf3 python3 python3-venv python3-pip python3-bpfcc bpfcc-tools bpftool
  iproute2 iptables nftables ethtool libcap2-bin procps prometheus irtt iputils-ping
  chromium chromium-driver ca-certificates dnsmasq-base
  podman buildah runc mmdebstrap uidmap
)
# What the agent and the collector need at run time (the container image).
runtime_packages=(
  iperf3 python3 python3-venv python3-pip python3-bpfcc bpftool ca-certificates
)
# The image's final stage: the venv is copied in from the build stage.
image_packages=(iperf3 python3 python3-bpfcc bpftool ca-certificates)
[ "$profile" = runtime ] && packages=("${runtime_packages[@]}") && do_helm=0
[ "$profile" = image ] && packages=("${image_packages[@]}") && do_helm=0

install_system() {
  if [ "$(id -u)" -ne 0 ]; then
    log "system packages need root; run as root or with sudo"; exit 1
  fi
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The Debian prometheus and iperf3 packages would start daemons; we only
    # want the binaries (policy-rc.d 101 = "do not start services").
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1
    fi
    trap '[ $created_policy = 1 ] && rm -f "$policy"' EXIT
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "system packages already installed"
  fi
  install_headers
  # An image build has no kernel of its own to mount tracefs into.
  [ "$profile" = all ] && mount_tracefs
  return 0
}

# BCC compiles its C against kernel headers at /lib/modules/$(uname -r)/build.
# Kernels without their headers package and without CONFIG_IKHEADERS (such as
# Firecracker guests) get Debian's cloud headers linked there instead: enough
# for programs that do not depend on exact struct layouts (tracepoints).
install_headers() {
  [ "${NETMESH_NO_HEADERS:-0}" = 1 ] && return 0
  rel=$(uname -r)
  mod=/lib/modules/$rel
  if [ -e "$mod/build/include" ] || [ -e /sys/kernel/kheaders.tar.xz ]; then
    log "kernel headers present for $rel"; return 0
  fi
  if apt-get install -y -q --no-install-recommends "linux-headers-$rel" >/dev/null 2>&1; then
    log "installed linux-headers-$rel"; return 0
  fi
  log "no headers package for $rel; linking Debian's cloud headers as a fallback"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-headers-cloud-amd64
  hdr=$(ls -d /usr/src/linux-headers-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
  common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$hdr" ]; then log "could not find installed cloud headers"; exit 1; fi
  mkdir -p "$mod"
  ln -sfn "$hdr" "$mod/build"
  [ -n "$common" ] && ln -sfn "$common" "$mod/source"
  log "linked $mod/build -> $hdr"
}

mount_tracefs() {
  if [ ! -e /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || log "could not mount tracefs"
  fi
  if [ ! -e /sys/kernel/debug/tracing ] && [ -d /sys/kernel/debug ]; then
    mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || log "could not mount debugfs"
  fi
}

install_venv() {
  py=/usr/bin/python3
  if [ ! -x "$venv/bin/python" ]; then
    log "creating venv $venv (system site packages, for Debian's bcc)"
    "$py" -m venv --system-site-packages "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    "$venv/bin/python" -m pip install -q -e "$here[$extras]"
  else
    "$venv/bin/python" -m pip install -q -e "$here"
  fi
  log "venv ready: $venv"
}

install_checkov() {
  dir=${NETMESH_CHECKOV_VENV:-$venv/checkov}
  if [ ! -x "$dir/bin/checkov" ]; then
    log "installing checkov into its own venv $dir"
    /usr/bin/python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$dir/bin/python" -m pip install -q 'checkov>=3,<4'
  fi
  log "checkov ready: $dir/bin/checkov"
}

# The pinned helm, built by `go install` (idempotent: skipped when the binary
# was built from exactly this module version). GOTOOLCHAIN=local: never fetch
# another Go toolchain; CGO off: a static binary, no C compiler needed.
HELM_VERSION=v3.22.0
install_helm() {
  bin=${NETMESH_BIN:-/usr/local/lib/netmesh/bin}
  cache=${NETMESH_GO_CACHE:-/var/cache/netmesh/go}
  go=$(command -v go || echo /usr/local/go/bin/go)
  if [ ! -x "$go" ]; then
    log "helm: no Go toolchain (go not on PATH nor /usr/local/go/bin); issue 20 is blocked"; exit 1
  fi
  if [ -x "$bin/helm" ] && "$go" version -m "$bin/helm" 2>/dev/null \
      | grep -Eq "^[[:space:]]+mod[[:space:]]+helm\.sh/helm/v3[[:space:]]+$HELM_VERSION([[:space:]]|$)"; then
    log "helm $HELM_VERSION already installed: $bin/helm"; return 0
  fi
  log "building helm $HELM_VERSION with go install (Go module proxy) into $bin"
  mkdir -p "$bin" "$cache"
  if ! env GOBIN="$bin" GOPATH="$cache/path" GOMODCACHE="$cache/mod" GOCACHE="$cache/build" \
      GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 \
      "$go" install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; then
    log "helm: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed (error above)"; exit 1
  fi
  log "helm ready: $("$bin/helm" version --short)"
}

[ $do_system = 1 ] && install_system
[ $do_helm = 1 ] && install_helm
[ $do_venv = 1 ] && install_venv
[ $do_checkov = 1 ] && install_checkov
exit 0
