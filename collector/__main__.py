"""``netmesh-collector``: read flags and NETMESH_ environment variables, validate, serve."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from collector.app import AuthConfigError, create_app
from collector.kube import make_api
from collector.settings import CollectorSettings
from netmesh.config import SettingsError, load


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(
            CollectorSettings,
            sys.argv[1:] if argv is None else argv,
            dict(os.environ),
            prog="netmesh-collector",
            description="netmesh collector: reports in, member lists out, one /metrics.",
        )
    except SettingsError as exc:
        print(f"netmesh-collector: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kube_api: Any = None
    if settings.mode == "kubernetes":
        try:
            kube_api = make_api(settings.kubeconfig)
        except ImportError:
            print(
                "netmesh-collector: kubernetes mode needs the 'kubernetes' package "
                "(pip install 'netmesh[kubernetes]')",
                file=sys.stderr,
            )
            return 2
        except Exception as exc:  # the client's config errors have no common base
            where = settings.kubeconfig or "the in-cluster service account"
            print(
                f"netmesh-collector: cannot configure the Kubernetes client from {where}: {exc}",
                file=sys.stderr,
            )
            return 2
    logging.getLogger("collector").info(
        "collector in %s mode on %s:%d (report TTL %.0fs, auth %s)",
        settings.mode,
        settings.bind_address,
        settings.port,
        settings.report_ttl,
        settings.auth_mode,
    )
    try:
        app = create_app(settings, kube_api=kube_api)
    except AuthConfigError as exc:
        print(f"netmesh-collector: {exc}", file=sys.stderr)
        return 2
    # run_app handles SIGTERM/SIGINT and runs the cleanup_ctx (watch threads stop).
    web.run_app(
        app,
        host=settings.bind_address,
        port=settings.port,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
