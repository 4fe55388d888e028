"""A headless Chromium driven over the DevTools protocol, for the report page test: load a
file, collect console errors, uncaught exceptions, log errors and every network request, ask
the page for its figures' state, and take a full-page screenshot."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page, closed by :meth:`close` (or ``with``)."""

    def __init__(self, exe: str, profile: Path, timeout: float = 15.0) -> None:
        from websockets.sync.client import connect

        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.events: list[dict[str, Any]] = []
        self._id = 0
        self._stack = contextlib.ExitStack()
        try:
            port = self._port(profile / "DevToolsActivePort", timeout)
            url = self._page_ws(port, timeout)
            self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=timeout))
        except BaseException:
            self.close()
            raise

    def _port(self, marker: Path, timeout: float) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            if marker.exists():
                first = marker.read_text().splitlines()
                if first and first[0].strip().isdigit():
                    return int(first[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def _page_ws(self, port: int, timeout: float) -> str:
        end = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            while time.monotonic() < end:
                try:
                    targets = client.get(f"http://127.0.0.1:{port}/json/list").json()
                except httpx.TransportError:
                    targets = []
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
                time.sleep(0.05)
        raise TimeoutError("chromium opened no page")

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events seen meanwhile are kept)."""
        self._id += 1
        my_id = self._id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.01, end - time.monotonic())))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 20.0) -> dict[str, Any]:
        for ev in self.events:
            if ev["method"] == method:
                return ev
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.01, end - time.monotonic())))
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url: str) -> None:
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(
                    f"exception: {d.get('exception', {}).get('description') or d.get('text')}"
                )
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in (
                "error",
                "assert",
            ):
                args = [str(a.get("value", a.get("description", ""))) for a in p.get("args", [])]
                out.append(f"console.{p['type']}: {' '.join(args)}")
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
        return out

    def requests(self) -> list[str]:
        """URLs of every request the page made."""
        return [
            ev["params"]["request"]["url"]
            for ev in self.events
            if ev["method"] == "Network.requestWillBeSent"
        ]

    def screenshot(self, path: Path) -> Path:
        """Full-page PNG screenshot."""
        m = self.call("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        res = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        path.write_bytes(base64.b64decode(res["data"]))
        return path

    def close(self) -> None:
        self._stack.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
