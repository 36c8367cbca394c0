"""Giving freed memory back to the operating system after big, short-lived buffers.

glibc keeps what a thread frees in that thread's malloc arena for reuse, and only the top
of an arena is returned by itself; with the executor threads that decode uploads and run
jobs living on, hundreds of megabytes freed after a request stayed counted against the
process (issue 11 #11). ``malloc_trim(0)`` returns the free pages of every arena. Elsewhere
(musl, macOS, Windows) there is nothing to call and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> bool:
    """Return free heap pages to the OS; True when something was called (glibc only)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
