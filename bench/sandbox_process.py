"""The sandbox in its own process, driven through its `/_sandbox/` control routes.

The benchmark never imports the sandbox: it starts the `skyprep-sandbox` console script,
so the contenders and the server each get their own process (and the server's CPU and
memory never count against a contender).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

API_KEY = "sandbox-api-key"
ACCT_KEY = "sandbox.skyprepapp.com"


def free_port() -> int:
    """A TCP port that was free a moment ago (the sandbox binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_command() -> list[str]:
    """The console script beside this interpreter, else the module form."""
    script = Path(sys.executable).parent / "skyprep-sandbox"
    if script.exists():
        return [str(script)]
    found = shutil.which("skyprep-sandbox")
    return [found] if found else [sys.executable, "-m", "skyprep_sandbox.cli"]


class SandboxProcess:
    """`skyprep-sandbox --scale S --seed N --port P [options]` as a context manager."""

    def __init__(
        self,
        scale: str,
        seed: int,
        *,
        rate_limit: int | None = None,
        rate_window_s: float | None = None,
        max_per_page: int | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 900.0,
    ) -> None:
        self.scale = scale
        self.seed = seed
        self.port = free_port()
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.max_per_page = max_per_page
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        self._log: BinaryIO | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/admin/api"

    def command(self) -> list[str]:
        command = [
            *sandbox_command(),
            "--scale",
            self.scale,
            "--seed",
            str(self.seed),
            "--port",
            str(self.port),
            "--paging",
            "honour",
        ]
        if self.rate_limit is not None:
            command += ["--rate-limit", str(self.rate_limit)]
            if self.rate_window_s is not None:
                command += ["--rate-window-s", str(self.rate_window_s)]
        if self.max_per_page is not None:
            command += ["--max-per-page", str(self.max_per_page)]
        return command

    def __enter__(self) -> SandboxProcess:
        # kept open for the server's lifetime, closed in __exit__
        self._log = open(self.log_path, "ab") if self.log_path else None
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = started + self.start_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the sandbox exited with {self.process.returncode} while starting: "
                    f"{' '.join(self.command())} (log: {self.log_path})"
                )
            try:
                self.stats()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                if time.perf_counter() > deadline:
                    self.__exit__(None, None, None)
                    raise TimeoutError(
                        f"the sandbox did not answer within {self.start_timeout_s} s"
                    ) from error
                time.sleep(0.2)
        self.startup_seconds = time.perf_counter() - started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- control routes ------------------------------------------------------------------

    def _control(self, route: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload or {}).encode()
        request = urllib.request.Request(
            f"{self.root}/_sandbox/{route}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stats(self) -> dict[str, Any]:
        """`{"calls": {route: n}, "throttled": n, ...}` since the last reset."""
        return dict(self._control("stats"))

    def reset_stats(self) -> None:
        self._control("reset_stats")

    def world(self) -> dict[str, Any]:
        """Clock, seed, scale and record counts of the served world."""
        return dict(self._control("world"))

    def config(self, **settings: Any) -> Any:
        return self._control("config", settings)

    def advance(self, days: int = 1) -> None:
        """Let `days` pass in the served world (`/_sandbox/advance`)."""
        self._control("advance", {"days": days})
