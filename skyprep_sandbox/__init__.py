"""A local emulator of the SkyPrep admin API: a deterministic world and an HTTP server.

    from skyprep_sandbox import World, Sandbox
    world = World.generate(seed=7, scale="tiny")
    with Sandbox(world) as sb:
        ...  # point a client at sb.base_url with sb.api_key / sb.acct_key

See docs/sandbox.md.
"""

from skyprep_sandbox.scale import SCALES, Scale
from skyprep_sandbox.server import Sandbox
from skyprep_sandbox.world import World

__all__ = ["SCALES", "Sandbox", "Scale", "World"]
