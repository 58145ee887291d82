"""One run at a time per pipeline (issue #11 item 6): real processes against the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_job import error_lines, sandbox_environment, skyprep

from skyprep_sandbox import Sandbox
from skyprep_source.job import ExitCode
from skyprep_source.run_lock import PipelineLocked, lock_path, run_lock


def test_a_second_holder_is_refused_and_the_lock_is_free_again_after_the_first(
    tmp_path: Path,
) -> None:
    with run_lock(str(tmp_path), "skyprep") as path:
        assert Path(path).read_text().strip() == str(os.getpid())
        with (
            pytest.raises(PipelineLocked, match="another run of pipeline 'skyprep'"),
            run_lock(str(tmp_path), "skyprep"),
        ):
            pass
        with run_lock(str(tmp_path), "other"):  # another pipeline has its own lock
            pass
    with run_lock(str(tmp_path), "skyprep"):
        pass


def wait_for_lock(path: Path, pid: int, timeout_s: float = 60.0) -> None:
    """Until the process `pid` wrote itself into the lock file (it holds the lock)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip() == str(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never took {path}")


def test_a_second_run_exits_10_at_once_and_a_killed_run_holds_no_lock(
    tmp_path: Path, sandbox: Sandbox, sandbox_factory: Callable[..., Sandbox]
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    # the first run hangs in its first read of the users until it is killed
    sandbox.inject_fault("slow", route="get_users", count=1, delay_s=30.0)
    first = subprocess.Popen(
        [sys.executable, "-m", "skyprep_source.cli", "run", "--requests-per-minute", "off"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = Path(lock_path(env["DLT_DATA_DIR"] + "/pipelines", "skyprep"))
        wait_for_lock(lock, first.pid)
        # the second run reads an account of its own: any call it made would show there
        other = sandbox_factory()
        second = skyprep(
            "run",
            "--requests-per-minute",
            "off",
            cwd=tmp_path,
            env=sandbox_environment(tmp_path, other),
        )

        assert second.returncode == ExitCode.LOCKED == 10
        assert error_lines(second) == [
            f"skyprep run: error: another run of pipeline 'skyprep' is in progress (lock "
            f"{lock} held by process {first.pid}); wait for it to finish, or give this run its "
            "own --pipeline-name"
        ]
        assert second.stdout == ""
        assert other.stats()["calls_total"] == 0  # not one call to SkyPrep
        assert first.poll() is None
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)

    # the kernel dropped the killed run's lock: the next run needs no cleanup
    third = skyprep("run", "--requests-per-minute", "off", cwd=tmp_path, env=env)
    assert third.returncode == 0, third.stderr
