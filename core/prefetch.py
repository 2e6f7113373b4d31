"""Read ahead: fetch the next page while the current one is mapped and written.

A sync alternates network waits (request, transfer, JSON decoding) with CPU and disk work
(validation, upserts). `prefetch` runs a page generator in a worker thread, one page ahead, so
the two overlap; SQLite and socket reads release the GIL, so this pays off even in Python.
Only the producer touches its HTTP session; errors (including Interrupted) reach the consumer
at the page where they happened, and closing the consumer stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(pages: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Iterate `pages`, computing up to `depth` items ahead in a background thread."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()

    def put(item: object) -> bool:
        while not cancelled.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="kpisync-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()
        worker.join(timeout=30)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
