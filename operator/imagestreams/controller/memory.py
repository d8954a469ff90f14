"""Giving memory back to the system after a burst.

A start-up reads every watched object at once (10,000 Deployments, 5,000 streams) and queues a pass for each; once
that is done the objects kept are a fraction of what was briefly alive. CPython's small-object allocator returns
an arena only when it is entirely empty, and glibc's malloc keeps freed blocks in the middle of its heap, so the
process stayed at its start-up peak: measured with 10k Deployments and 5k streams, 374 MiB after a restart against
238 MiB for the same objects seen one by one, with 58 MiB of it freed heap that glibc's malloc_trim gave back at
once (docs/benchmarks.md, "Memory"). Here, once the start-up work has drained, the heap's free pages go back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

QUIET_SECONDS = 2.0  # no work queued or running for this long: the start-up burst is over
POLL_SECONDS = 0.5


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on another C library (musl has none)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Collect garbage cycles, then hand the heap's free pages back to the system. False without glibc."""
    gc.collect()
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


async def release_after_start_up(started: asyncio.Event, busy: Callable[[], bool]) -> None:
    """Once `started` is set and nothing has been `busy` for QUIET_SECONDS, release what the start-up freed."""
    await started.wait()
    quiet = 0.0
    while quiet < QUIET_SECONDS:
        await asyncio.sleep(POLL_SECONDS)
        quiet = 0.0 if busy() else quiet + POLL_SECONDS
    if release_freed_memory():
        logger.debug("start-up work done: freed memory handed back to the system")
