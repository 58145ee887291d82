"""One run at a time per pipeline: an advisory lock the operating system releases.

Two runs of one pipeline at once would share the account's rate budget, make every call
twice and race on dlt's working state (dlt's own "Could not set lock" at load was the only
sign). `skyprep run` therefore holds an exclusive `flock` on a lock file while it runs; a
second run fails at once. A run killed with `kill -9` holds nothing: the kernel drops the
lock with the process, so no stale lock file ever needs deleting by hand.

The lock file sits beside the pipeline's working directory (`<pipelines_dir>/.<name>.lock`),
not inside it: dlt deletes and re-creates that directory on a pipeline's first run and when
the destination lost its dataset, and a lock file deleted under a running job would let a
second one in.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager


class PipelineLocked(Exception):
    """Another process holds the pipeline's run lock."""

    def __init__(self, pipeline_name: str, path: str, holder: str) -> None:
        who = f" by process {holder}" if holder else ""
        super().__init__(
            f"another run of pipeline {pipeline_name!r} is in progress (lock {path} held{who}); "
            "wait for it to finish, or give this run its own --pipeline-name"
        )
        self.path = path
        self.holder = holder


def lock_path(pipelines_dir: str, pipeline_name: str) -> str:
    """Where the run lock of `pipeline_name` lives."""
    return os.path.join(pipelines_dir, f".{pipeline_name}.lock")


@contextmanager
def run_lock(pipelines_dir: str, pipeline_name: str) -> Iterator[str]:
    """Hold the pipeline's run lock for the block; raise `PipelineLocked` at once when another
    process holds it. Yields the lock file's path."""
    os.makedirs(pipelines_dir, exist_ok=True)
    path = lock_path(pipelines_dir, pipeline_name)
    fd = _acquire(path, pipeline_name)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        # the lock goes with the descriptor; the file stays (deleting it would race a waiter)
        os.close(fd)


def _acquire(path: str, pipeline_name: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise PipelineLocked(pipeline_name, path, holder) from None
        # someone may have replaced the file between our open and our lock: lock the file
        # that is at the path now
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
