"""The pager: a list route read page by page, each row once, whatever the server does with
`page` / `per_page`. Apart from the transport: it asks `fetch(page)` for a page and never
sees HTTP, retries or the rate budget (`client.SkyPrepClient.pages` hands it its calls).

- `PagingKnowledge`: what this run learned about the server's paging (shared by every list);
- `ListPass`: one pass over a list (stops at a short or repeated page, learns caps);
- `Pager.pages`: the passes, with the re-check of page 1 after a multi-page list
  (`verify_stable`) and a bounded number of re-reads when the list moved under it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson

from skyprep_source.errors import SkyPrepAPIError

logger = logging.getLogger("skyprep_source")

# a list that moves under the pager is re-read; this many passes, then the run fails
MAX_LIST_PASSES = 3

RowKey = Callable[[Mapping[str, Any]], Any]
P = TypeVar("P")


@dataclass
class PagingKnowledge:
    """What the client learned about the server's paging during this run."""

    honours_page_size: bool = False  # some page came back with exactly per_page rows
    ignores_paging: bool = False  # a page had more than per_page rows, or repeated a page
    longest_whole_short_page: int = 0  # a short first page this long was confirmed complete
    page_caps: dict[str, int] = field(default_factory=dict)  # route -> rows the server caps at

    def learn_paging_ignored(self, route: str, evidence: str) -> None:
        if not self.ignores_paging:
            logger.warning(
                "SkyPrep %s ignores paging (%s): reading each list in one call", route, evidence
            )
        self.ignores_paging = True


class KeyOf:
    """Row identity over the raw JSON record (ids as text: 8877 == "8877").

    A record without the key fields is identified by its whole content, so records that lack
    an id are never collapsed into one. `many()` keys a whole page at C speed.
    """

    def __init__(self, *fields: str) -> None:
        self.fields = fields

    def __call__(self, row: Mapping[str, Any]) -> Any:
        values = tuple(row.get(name) for name in self.fields)
        if None in values:
            return orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)
        return str(values[0]) if len(values) == 1 else tuple(map(str, values))

    def many(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The keys of a page, in order."""
        if len(self.fields) == 1:
            name = self.fields[0]
            values = [row.get(name) for row in rows]
            if None not in values:
                return list(map(str, values))
        return [self(row) for row in rows]


def key_of(*fields: str) -> KeyOf:
    """A row-identity function over `fields` of the raw JSON record (see `KeyOf`)."""
    return KeyOf(*fields)


class PageFormat(Protocol[P]):
    """What one page of a list route becomes, for `SkyPrepClient.pages(page_format=)`.

    `decode` may read the raw body directly (a fast path); when it answers None the body is
    parsed as JSON, checked to be an array, and `from_rows` turns the records into a page.
    `len(page)` is its row count; `keys` and `take` let the pager drop rows it has seen.
    """

    def decode(self, body: bytes) -> P | None: ...

    def from_rows(self, rows: list[dict[str, Any]]) -> P: ...

    def keys(self, page: P, key: RowKey) -> list[Any]: ...

    def take(self, page: P, positions: list[int]) -> P: ...


class JsonRows:
    """The default page format: the page's JSON records, as dicts."""

    def decode(self, body: bytes) -> list[dict[str, Any]] | None:
        return None

    def from_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows

    def keys(self, page: list[dict[str, Any]], key: RowKey) -> list[Any]:
        many = getattr(key, "many", None)
        return many(page) if many is not None else [key(row) for row in page]

    def take(self, page: list[dict[str, Any]], positions: list[int]) -> list[dict[str, Any]]:
        return [page[i] for i in positions]


JSON_ROWS = JsonRows()


class ListPass(Generic[P]):
    """One pass over a list: pages fetched until a short, empty or repeated page ends it."""

    def __init__(
        self,
        route: str,
        fetch: Callable[[int], P],
        key: RowKey,
        page_format: PageFormat[P],
        per_page: int,
        knowledge: PagingKnowledge,
        yielded: set[Any],
    ) -> None:
        self.route = route
        self.fetch = fetch
        self.key = key
        self.page_format = page_format
        self.per_page = per_page
        self.knowledge = knowledge
        self.yielded = yielded  # every pass of this list: rows already handed out
        self.seen: set[Any] = set()  # this pass: tells a repeated page from new rows

    def split(self, rows: P, keys: list[Any]) -> tuple[bool, P]:
        """(any row new to this pass, the rows never yielded before)."""
        page_keys = set(keys)
        if len(page_keys) == len(keys) and page_keys.isdisjoint(self.yielded):
            # the usual page: all new, no drift; no per-row work
            self.seen.update(page_keys)
            self.yielded.update(page_keys)
            return bool(keys), rows  # none yielded before, so none seen in this pass
        any_new = False
        fresh: list[int] = []
        for position, row_key in enumerate(keys):
            if row_key not in self.seen:
                self.seen.add(row_key)
                any_new = True
            if row_key not in self.yielded:
                self.yielded.add(row_key)
                fresh.append(position)
        return any_new, self.page_format.take(rows, fresh)

    def read(self) -> Generator[P, None, tuple[list[Any], bool]]:
        """Yield the pass's new rows page by page; return (keys of page 1, whether the list
        took several pages)."""
        route, per_page, knowledge = self.route, self.per_page, self.knowledge
        first_keys: list[Any] = []
        page = 1
        while True:
            full = knowledge.page_caps.get(route, per_page)
            rows = self.fetch(page)
            keys = self.page_format.keys(rows, self.key)
            size = len(keys)
            if page == 1:
                first_keys = keys
            any_new, fresh = self.split(rows, keys)
            if size > full:
                if size > per_page:
                    knowledge.learn_paging_ignored(route, f"a page of {size} > {per_page} rows")
                if _has_rows(fresh):
                    yield fresh
                return first_keys, False
            if size and not any_new:
                knowledge.learn_paging_ignored(route, f"page {page} repeated rows already read")
                return first_keys, False
            if _has_rows(fresh):
                yield fresh
            if knowledge.ignores_paging:
                return first_keys, False
            if size == full:
                if full == per_page:
                    knowledge.honours_page_size = True
                page += 1
                continue
            # a short page: the end of the list, once we know the server's page size holds
            known_size = (
                knowledge.honours_page_size
                or route in knowledge.page_caps
                or size < knowledge.longest_whole_short_page
            )
            if not size or page > 1 or known_size:
                return first_keys, page > 1
            # a short first page may be a server cap below per_page: one call to confirm
            second = self.fetch(2)
            second_keys = self.page_format.keys(second, self.key)
            any_new, fresh_second = self.split(second, second_keys)
            if not second_keys:
                knowledge.longest_whole_short_page = max(knowledge.longest_whole_short_page, size)
                return first_keys, False
            if not any_new:
                knowledge.learn_paging_ignored(route, "page 2 repeated page 1")
                return first_keys, False
            knowledge.page_caps[route] = size
            logger.warning(
                "SkyPrep %s caps pages at %d rows (asked for %d); paging on", route, size, per_page
            )
            if _has_rows(fresh_second):
                yield fresh_second
            if len(second_keys) < size:
                return first_keys, True
            page = 3


class Pager:
    """Reads list routes for one client, with what the run learned about the server."""

    def __init__(self, knowledge: PagingKnowledge) -> None:
        self.knowledge = knowledge

    def pages(
        self,
        route: str,
        fetch: Callable[[int], P],
        key: RowKey,
        page_format: PageFormat[P],
        per_page: int,
        *,
        verify_stable: bool = False,
    ) -> Iterator[P]:
        """Yield the rows of a list page by page, each row once (see
        `SkyPrepClient.pages`). `fetch(page)` asks for one page of `per_page` rows."""
        yielded: set[Any] = set()
        for _ in range(MAX_LIST_PASSES):
            one_pass = ListPass(route, fetch, key, page_format, per_page, self.knowledge, yielded)
            first_keys, several_pages = yield from one_pass.read()
            if not several_pages or not verify_stable:
                return
            if page_format.keys(fetch(1), key) == first_keys:
                return
            logger.warning(
                "SkyPrep %s changed while it was paged (its first page moved); reading it again "
                "so that no record is missed",
                route,
            )
        raise SkyPrepAPIError(
            f"SkyPrep {route} kept changing while it was paged ({MAX_LIST_PASSES} passes); "
            "nothing from this run was loaded, re-run later"
        )


def _has_rows(page: Any) -> bool:
    return len(page) > 0
