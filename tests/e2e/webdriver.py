"""A minimal W3C WebDriver client (urllib) for Debian's chromedriver: enough to click a page.

Starts ``chromedriver`` on a free loopback port with a headless Chromium and a
fresh profile; ``find``/``click``/``type``/``text``/``attribute`` by CSS
selector; everything is stopped and removed on exit, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

from tests.helpers import free_port, wait_for

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    def __init__(self, base: str, session: str) -> None:
        self.base = f"{base}/session/{session}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["value"]

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str | None:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return str(found[0][ELEMENT]) if found else None

    def wait(self, css: str, timeout: float = 20) -> str:
        return wait_for(lambda: self.find(css), timeout, 0.2, f"element {css}")

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.wait(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/element/{self.wait(css)}/value", {"text": text})

    def text(self, css: str) -> str:
        return str(self._call("GET", f"/element/{self.wait(css)}/text"))

    def attribute(self, css: str, name: str) -> str | None:
        value = self._call("GET", f"/element/{self.wait(css)}/attribute/{name}")
        return None if value is None else str(value)


@contextlib.contextmanager
def chromium(profile: pathlib.Path) -> Iterator[Browser]:
    port = free_port()
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    session = ""
    try:
        wait_for(lambda: _ready(base), 20, 0.2, "chromedriver")
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--disable-background-networking",
                            f"--user-data-dir={profile}",
                        ],
                    },
                }
            }
        }
        req = urllib.request.Request(
            base + "/session",
            data=json.dumps(caps).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            session = json.loads(resp.read())["value"]["sessionId"]
        yield Browser(base, session)
    finally:
        if session:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(
                    urllib.request.Request(f"{base}/session/{session}", method="DELETE"),
                    timeout=20,
                ).close()
        driver.terminate()
        try:
            driver.wait(10)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/status", timeout=2) as resp:
            return bool(json.loads(resp.read())["value"]["ready"])
    except OSError:
        return False
