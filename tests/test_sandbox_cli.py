"""The standalone sandbox: `skyprep-sandbox --scale … --seed … --port …` in its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_console_command_serves_the_world_and_its_control_routes() -> None:
    port = free_port()
    command = [sys.executable, "-m", "skyprep_sandbox.cli", "--scale", "tiny", "--seed", "3"]
    command += ["--port", str(port), "--rate-limit", "50", "--days", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        root = f"http://127.0.0.1:{port}"
        for _ in range(200):  # up to ~20 s on a busy machine; ready as soon as it answers
            try:
                summary = requests.get(f"{root}/_sandbox/world", timeout=2).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.1)
        else:
            raise AssertionError("the sandbox never answered")
        assert summary["scale"] == "tiny" and summary["seed"] == 3 and summary["days_advanced"] == 2
        assert requests.get(f"{root}/_sandbox/config", timeout=2).json()["rate_limit"] == 50
        creds = {"api_key": "sandbox-api-key", "acct_key": "sandbox.skyprepapp.com"}
        users = requests.post(f"{root}/admin/api/get_users", data=creds, timeout=5).json()
        assert len(users) == summary["counts"]["users"]
    finally:
        process.terminate()
        process.communicate(timeout=10)
