"""Bearer tokens kept in files: what an agent presents and a static-mode collector expects.

The agent re-reads its file before every report (in Kubernetes the kubelet
rotates the projected ServiceAccount token in place); the collector reads a
shared token once at start-up. A token is never logged: errors name the file,
not its content.
"""

from __future__ import annotations

import pathlib

AUTHORIZATION = "Authorization"
SCHEME = "Bearer "
MIN_SHARED_TOKEN_LENGTH = 16


class TokenFileError(ValueError):
    """The token file cannot be read or holds no usable token (the message names the file)."""


def read_token(path: str) -> str:
    """The token in ``path``, surrounding whitespace removed."""
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise TokenFileError(f"cannot read token file {path}: {why}") from None
    token = text.strip()
    if not token:
        raise TokenFileError(f"token file {path} is empty")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise TokenFileError(f"token file {path}: the token contains whitespace or control bytes")
    return token


def bearer(token: str) -> dict[str, str]:
    """The request header that presents ``token``."""
    return {AUTHORIZATION: SCHEME + token}


def from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is none."""
    if not value or value[: len(SCHEME)].lower() != SCHEME.lower():
        return None
    token = value[len(SCHEME) :].strip()
    return token or None
