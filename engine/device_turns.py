"""Who may use the device next: interactive jobs first, background training a step at a time.

The queue's worker runs interactive batches (a person is waiting for each); a background
trainer (``/train`` from chat) runs hundreds of short optimisation steps. Each side takes a
turn around its device work. An interactive batch waits at most for the training step in
progress; a training step never starts while interactive work is running, or waiting in the
queue (``watch`` tells the turns how to see that), so a stylize job is delayed by at most
one training step however long the training is.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager, contextmanager
from typing import AsyncIterator, Callable, Iterator

from .errors import JobCancelled

POLL_S = 0.05  # how often a waiting background step looks at the queue and its cancel flag


class DeviceTurns:
    """A device lock with two priorities; safe to use from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._interactive = 0  # interactive batches waiting for or holding the device
        self._background = False  # a background step holds the device
        self._waiting: list[Callable[[], bool]] = []  # "is interactive work queued?"

    def watch(self, waiting: Callable[[], bool]) -> None:
        """Count interactive work queued elsewhere (the job queue) as wanting the device."""
        self._waiting.append(waiting)

    def interactive_pending(self) -> bool:
        """Whether interactive work holds, waits for, or is queued for the device."""
        return self._interactive > 0 or any(waiting() for waiting in self._waiting)

    @contextmanager
    def interactive(self) -> Iterator[None]:
        """Hold the device for an interactive batch, after the background step in progress."""
        self._want_interactive()
        try:
            self._wait_for_background()
            yield
        finally:
            self._end_interactive()

    @asynccontextmanager
    async def interactive_on_loop(self) -> AsyncIterator[None]:
        """``interactive`` for a coroutine whose batch runs elsewhere (the engine process):
        a wait for the step in progress happens on a worker thread, not the event loop."""
        busy = self._want_interactive()
        try:
            if busy:
                await asyncio.to_thread(self._wait_for_background)
            yield
        finally:
            self._end_interactive()  # also when cancelled while waiting: nothing was held

    @property
    def background_held(self) -> bool:
        """Whether a background step holds the device now (for health and tests)."""
        return self._background

    def _want_interactive(self) -> bool:
        """Count one more interactive batch (no new background step starts); True while a
        background step still holds the device."""
        with self._cond:
            self._interactive += 1
            return self._background

    def _wait_for_background(self) -> None:
        with self._cond:
            while self._background:
                self._cond.wait()

    def _end_interactive(self) -> None:
        with self._cond:
            self._interactive -= 1
            self._cond.notify_all()

    @contextmanager
    def background(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold the device for one background step, once no interactive work wants it.

        One background step at a time; ``cancel`` (when set while waiting) raises
        ``JobCancelled`` instead of waiting on.
        """
        with self._cond:
            while self._background or self.interactive_pending():
                if cancel is not None and cancel.is_set():
                    raise JobCancelled()
                self._cond.wait(POLL_S)
            self._background = True
        try:
            yield
        finally:
            with self._cond:
                self._background = False
                self._cond.notify_all()
