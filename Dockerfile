# One image for the netmesh agent and collector.
#
#   docker build -t netmesh:0.1.0 .        (or `make image`: docker, else podman/buildah)
#
# Debian bookworm, because BCC's Python bindings come from Debian
# (python3-bpfcc) and are built for bookworm's /usr/bin/python3. Everything is
# installed by scripts/install-deps.sh, the same script the Makefile and CI
# use, here without the kernel-headers fallback: the agent uses the node's
# headers, mounted from the host (/lib/modules, /usr/src).
#
# Three stages, so that the image carries only what runs and a code change
# rebuilds one small layer:
#   system  the run-time packages (NETMESH_PACKAGES=image: no pip, no venv tools)
#   build   + pip/venv; the venv with the dependencies, pruned of what never runs
#   final   system + the venv + the source (editable install: ebpf/retransmit.c
#           is read from the source tree)
#
# The image runs as the unprivileged user 65532 (the collector). The agent's
# DaemonSet runs it as root with CAP_BPF and CAP_PERFMON only.
FROM debian:12.11-slim AS system

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NETMESH_PACKAGES=image \
    NETMESH_NO_HEADERS=1 \
    NETMESH_EXTRAS=kubernetes \
    VENV=/opt/netmesh/venv

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/netmesh/src

# System packages first: this layer changes only when the script does.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh --system \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log

FROM system AS build
ENV NETMESH_PACKAGES=runtime
RUN bash scripts/install-deps.sh --system
# The dependencies only (empty packages stand in for the code): this layer is
# rebuilt when the packaging changes, not when the code (or the README, which
# only fills the package's long description) does. Then out goes what never
# runs: the asyncio Kubernetes client (68 MB), pip, setuptools.
COPY setup.cfg pyproject.toml ./
RUN touch README.md \
    && for p in netmesh agent collector lab; do mkdir -p "$p" && touch "$p/__init__.py"; done \
    && bash scripts/install-deps.sh --venv \
    && site=$(echo "$VENV"/lib/python3*/site-packages) \
    && rm -rf "$site"/kubernetes/aio "$site"/pip "$site"/pip-* "$site"/setuptools \
              "$site"/setuptools-* "$site"/pkg_resources "$site"/_distutils_hack \
              "$site"/distutils-precedence.pth "$VENV"/bin/pip* \
    && rm -rf netmesh agent collector lab

FROM system
COPY --from=build /opt/netmesh /opt/netmesh
COPY netmesh netmesh
COPY agent agent
COPY collector collector
COPY lab lab
COPY ebpf ebpf
ENV PATH=/opt/netmesh/venv/bin:$PATH
# Both services import (the collector's Kubernetes client too) and BCC loads.
RUN python -c "import agent.__main__, collector.__main__, kubernetes.client, kubernetes.config, bcc" \
    && groupadd --system --gid 65532 netmesh \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
         --home-dir /nonexistent --shell /usr/sbin/nologin netmesh

USER 65532:65532
EXPOSE 9100 9101 5201
HEALTHCHECK NONE
CMD ["netmesh-collector"]
