"""Drive a real headless Chromium over the DevTools protocol, with nothing but the standard library.

Chromium is started with `--remote-debugging-pipe`: it reads protocol messages from fd 3 and
writes its answers and events to fd 4, each a JSON object ended by a NUL byte. No websocket,
no port, no browser download: the Debian `chromium` package (or any Chromium/Chrome on PATH,
or $CHROMIUM) is enough.

    with Chromium.start() as browser:
        page = browser.open("file:///tmp/report.html")
        page.evaluate("document.title"); page.console_errors; page.requests

Also a command to screenshot a page: `python tests/chromium.py PAGE.html OUT.png [WIDTH HEIGHT]`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI: Chromium refuses to start sandboxed as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)
# Bounds on waiting for the browser (not assertions about speed): a wedged browser fails the
# test instead of hanging it.
ANSWER_TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM, else the first of the usual names on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class ChromiumError(RuntimeError):
    """The browser answered a command with an error, or stopped answering."""


@dataclass
class Page:
    """One tab: its DevTools session and what it reported since it was opened."""

    browser: Chromium
    session_id: str
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, session_id=self.session_id, **params)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise ChromiumError(f"{expression!r} threw: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: str | os.PathLike[str], width: int, height: int) -> None:
        """A PNG of the page's top `width` x `height` CSS pixels."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png")
        Path(path).write_bytes(base64.b64decode(shot["data"]))


class Chromium:
    """A headless Chromium and its DevTools pipe."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="skyprep-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # a tiny exec wrapper puts the pipe ends on fds 3 and 4, where Chromium expects them
        wrapper = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                wrapper,
                str(to_browser_r),
                str(from_browser_w),
                binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    @classmethod
    def start(cls) -> Chromium:
        binary = find_chromium()
        if binary is None:
            raise ChromiumError("no Chromium found (install Debian's chromium, or set $CHROMIUM)")
        return cls(binary)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone: the kill below is enough
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    # ---- protocol ---------------------------------------------------------------------

    def call(self, method: str, session_id: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            answer: queue.Queue[dict[str, Any]] = queue.Queue()
            self._answers[message_id] = answer
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session_id:
            message["sessionId"] = session_id
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        try:
            reply = answer.get(timeout=ANSWER_TIMEOUT_S)
        except queue.Empty:
            raise ChromiumError(f"Chromium did not answer {method}") from None
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    waiting = self._answers.pop(message["id"], None)
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        """Keep what a test asserts on: console errors, exceptions and every request."""
        page = self._pages.get(event.get("sessionId", ""))
        method, params = event.get("method"), event.get("params", {})
        if page is not None:
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                texts = [
                    str(arg.get("value", arg.get("description", ""))) for arg in params["args"]
                ]
                page.console_errors.append("console: " + " ".join(texts))
            elif method == "Runtime.exceptionThrown":
                page.console_errors.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                page.console_errors.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                page.requests.append(str(params["request"]["url"]))
        self.events.put(event)

    # ---- pages ------------------------------------------------------------------------

    def open(self, url: str) -> Page:
        """A new tab at `url`, returned once the page's load event fired."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session, url)
        self._pages[session] = page
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        self._wait_for(session, "Page.loadEventFired")
        return page

    def _wait_for(self, session_id: str, method: str) -> None:
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=1.0)
            except queue.Empty:
                continue
            if event.get("sessionId") == session_id and event.get("method") == method:
                return
        raise ChromiumError(f"no {method} within {ANSWER_TIMEOUT_S:.0f}s")


def main(argv: list[str]) -> int:
    """`python tests/chromium.py PAGE.html OUT.png [WIDTH HEIGHT]`: screenshot a local page."""
    if len(argv) not in (2, 4):
        print(main.__doc__, file=sys.stderr)
        return 2
    width, height = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (1100, 1400)
    with Chromium.start() as browser:
        page = browser.open(Path(argv[0]).resolve().as_uri())
        page.screenshot(argv[1], width, height)
        if page.console_errors or [u for u in page.requests if u != page.url]:
            print(f"warning: {page.console_errors} {page.requests}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
