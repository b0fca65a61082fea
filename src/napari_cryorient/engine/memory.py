"""Memory estimates before large allocations: a clear refusal instead of an out-of-memory kill."""

from __future__ import annotations

import os

__all__ = ["available_memory_bytes", "check_memory"]


def available_memory_bytes() -> int | None:
    """Physical memory available now (bytes), or None where the system does not say."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """``ValueError`` when ``nbytes`` exceed the memory available (with ``advice``)."""
    available = available_memory_bytes()
    if available is not None and nbytes > available:
        raise ValueError(f"{what} needs about {nbytes / 2**30:.1f} GiB of memory and "
                         f"{available / 2**30:.1f} GiB are available; {advice}")
