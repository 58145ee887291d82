"""Read ahead: items produced on background threads while the consumer (dlt) writes.

The wait for the server overlaps our own work (parsing, hashing, dlt's writing); the calls in
flight stay bounded by the client's `concurrency`.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


_DONE = object()


def _put(ready: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item` into `ready`, unless the consumer goes away first (then False)."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(items: Iterable[Any], ready: queue.Queue[Any], stop: threading.Event) -> None:
    """Put `items` into `ready`, then `_DONE` (or the error that ended them); give up as soon
    as `stop` is set (the consumer went away)."""
    try:
        for item in items:
            if not _put(ready, item, stop):
                return
        outcome: Any = _DONE
    except BaseException as error:  # handed to the consumer, raised there
        outcome = error
    _put(ready, outcome, stop)


def _drain(ready: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = ready.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def prefetched(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """`items`, produced on a background thread up to `depth` items ahead of the consumer.

    The next pages are fetched and parsed while this batch is written by dlt: the wait for
    the server overlaps our own work. Still one call in flight at a time (the client's
    semaphore); the consumer keeps everything that touches dlt state.
    """
    return read_ahead([lambda: items], workers=1, depth=depth)


def read_ahead(
    sources: Iterable[Callable[[], Iterable[T]]], workers: int, depth: int = 2
) -> Generator[T, None, None]:
    """The items of each source, source after source in order, with up to `workers` sources
    produced at once on background threads, each up to `depth` items ahead of the consumer.

    Course progresses are read course after course this way: while one course's pages are
    parsed (Arrow's JSON reader runs outside the GIL), the next course's are being fetched,
    so the wait for the server and the parsing overlap. Calls in flight stay bounded by the
    client (its `concurrency`). Memory: at most `workers * (depth + 1)` items (pages, not
    courses: a course with 100,000 learners streams like any other).
    """
    stop = threading.Event()
    pending = iter(sources)
    active: deque[tuple[queue.Queue[Any], threading.Thread]] = deque()

    def start_next() -> None:
        source = next(pending, None)
        if source is None:
            return
        ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
        worker = threading.Thread(
            target=lambda: _produce(source(), ready, stop), name="skyprep-ahead", daemon=True
        )
        worker.start()
        active.append((ready, worker))

    try:
        for _ in range(workers):
            start_next()
        while active:
            ready, _worker = active[0]
            yield from _drain(ready)
            active.popleft()
            start_next()
    finally:
        stop.set()
        for _ready, worker in active:
            worker.join(timeout=5)
