# One image for the netmesh agent and collector.
#
#   docker build -t netmesh:0.1.0 .
#
# Debian bookworm, because BCC's Python bindings come from Debian
# (python3-bpfcc) and are built for bookworm's /usr/bin/python3. Everything is
# installed by scripts/install-deps.sh, the same script the Makefile and CI
# use, here with only the run-time packages (NETMESH_PACKAGES=runtime) and
# without the kernel-headers fallback: the agent uses the node's headers,
# mounted from the host (/lib/modules, /usr/src).
#
# The image runs as the unprivileged user 65532 (the collector). The agent's
# DaemonSet runs it as root with CAP_BPF and CAP_PERFMON only.
FROM debian:12.11-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NETMESH_PACKAGES=runtime \
    NETMESH_NO_HEADERS=1 \
    NETMESH_EXTRAS=kubernetes \
    VENV=/opt/netmesh/venv

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/netmesh/src

# System packages first: this layer changes only when the script does.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh --system \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# The project (editable install: ebpf/retransmit.c is read from the source tree).
COPY setup.cfg pyproject.toml README.md ./
COPY netmesh netmesh
COPY agent agent
COPY collector collector
COPY lab lab
COPY ebpf ebpf
RUN bash scripts/install-deps.sh --venv \
    && rm -rf /root/.cache \
    && groupadd --system --gid 65532 netmesh \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
         --home-dir /nonexistent --shell /usr/sbin/nologin netmesh

ENV PATH=/opt/netmesh/venv/bin:$PATH
USER 65532:65532
EXPOSE 9100 9101 5201
HEALTHCHECK NONE
CMD ["netmesh-collector"]
