"""The sandbox's own errors (a module of its own: the world and the routes both raise them,
and neither imports the other for it)."""

from __future__ import annotations


class RecordNotFound(LookupError):
    """A mutation or lookup named a record that does not exist."""
