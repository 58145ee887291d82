"""Shared fixtures: a fresh tiny world, a running sandbox over it, and a sandbox factory.

def test_something(sandbox):            # a Sandbox on a fresh tiny world (seed 7)
    requests.post(f"{sandbox.base_url}/get_users",
                  data={"api_key": sandbox.api_key, "acct_key": sandbox.acct_key})

def test_other(sandbox_factory, tiny_world):
    sb = sandbox_factory(tiny_world, paging="ignore", rate_limit=5, rate_window_s=0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from skyprep_sandbox import Sandbox, World


@pytest.fixture
def tiny_world() -> World:
    """A fresh deterministic tiny world (seed 7): ~30 users, 5 courses."""
    return World.generate(seed=7, scale="tiny")


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with any options: `sandbox_factory(world, **options)`; all are stopped
    at teardown. Without a world, a fresh tiny world is used."""
    started: list[Sandbox] = []

    def start(world: World | None = None, **options: Any) -> Sandbox:
        sb = Sandbox(
            world if world is not None else World.generate(seed=7, scale="tiny"), **options
        )
        sb.start()
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(tiny_world: World) -> Iterator[Sandbox]:
    """A running Sandbox (default switches: no rate limit, paging honoured) on a tiny world."""
    with Sandbox(tiny_world) as sb:
        yield sb


@pytest.fixture
def api(sandbox: Sandbox) -> Callable[..., requests.Response]:
    """Call the `sandbox` fixture with its credentials in the POST body:
    `api("get_users", per_page=10)`."""

    def call(route: str, **params: Any) -> requests.Response:
        body = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key, **params}
        return requests.post(f"{sandbox.base_url}/{route}", data=body, timeout=30)

    return call
