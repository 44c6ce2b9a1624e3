"""What the server shares between requests: one look at the store for the requests that arrive together, and
what was already built for a state of the store and a request's inputs.

Several people browsing at once (benchmarks/bench_load.py: 20) send the server many requests at the same moment.
Each callback needs the store as it is *now* (:func:`dashboards.data.snapshot`: a ``stat`` of every run's
``run.json``, 15 ms for 2 000 runs); :func:`snapshot` lets the requests that arrived while a look was not yet
started share the next one instead of each making its own (a request is never answered with a look that began
before it arrived, so nothing is staler than before).  :func:`built` keeps what was built for a state of the
store and a request's inputs — the figures of a selection (a projection of 2 000 runs: 100 ms to build), the
page (its run table: 100 ms) — for the next request with the same state and inputs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

from . import data

__all__ = ["snapshot", "built", "clear"]


class _Looks:
    """Looks at one store: each request gets a snapshot taken by a look that began after the request arrived."""

    def __init__(self, root: Path):
        self.root = root
        self.cond = threading.Condition()
        self.running_since: float | None = None  # when the look in progress began
        self.done_since = float("-inf")          # when the last finished look began
        self.last: data.Snapshot | None = None
        self.error: BaseException | None = None

    def get(self) -> data.Snapshot:
        arrived = time.monotonic()
        with self.cond:
            while True:
                if self.done_since >= arrived:  # a look that began after this request arrived
                    if self.error is not None:
                        raise self.error
                    return self.last
                if self.running_since is None:
                    break
                self.cond.wait()  # a look in progress: wait for it (and use it if it began after we arrived)
            began = self.running_since = time.monotonic()
        snap, error = None, None
        try:
            snap = data.snapshot(self.root)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, raised here too
            error = exc
        with self.cond:
            self.running_since, self.done_since, self.last, self.error = None, began, snap, error
            self.cond.notify_all()
        if error is not None:
            raise error
        return snap


_LOOKS: dict[Path, _Looks] = {}
_LOOKS_GUARD = threading.Lock()


def snapshot(root) -> data.Snapshot:
    """:func:`dashboards.data.snapshot` of ``root``, shared by the requests that arrive while it is taken."""
    root = Path(root).resolve()
    with _LOOKS_GUARD:
        looks = _LOOKS.setdefault(root, _Looks(root))
    return looks.get()


_FIGURES: OrderedDict = OrderedDict()
_FIGURES_LOCK = threading.Lock()
MAX_FIGURES = 64


def built(key: tuple, make):
    """``make()`` kept under ``key`` (it must name the store state: the snapshot's root and signature, and every
    input); the :data:`MAX_FIGURES` most recently used are kept.  The value is shared: never change it."""
    with _FIGURES_LOCK:
        if key in _FIGURES:
            _FIGURES.move_to_end(key)
            return _FIGURES[key]
    value = make()
    with _FIGURES_LOCK:
        _FIGURES[key] = value
        while len(_FIGURES) > MAX_FIGURES:
            _FIGURES.popitem(last=False)
    return value


def clear() -> None:
    """Forget everything kept (tests)."""
    with _FIGURES_LOCK:
        _FIGURES.clear()
