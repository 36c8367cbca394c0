"""Where methods run: one interface, chosen by the ``engine`` setting.

The queue (``engine/queue.py``) decides *what* runs *when*: limits, order, batching,
timeouts and the events users see. A backend decides *where*: on this machine (``local``:
in an engine process of its own by default, or on a thread of this one), or on a Ray
Serve cluster (``ray``). Every backend takes a batch of prepared jobs and
gives back one result per job, reporting progress through ``on_progress`` and stopping at
its next step once ``cancel`` is set.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from ..engine import PreparedJob, ProgressFn, StyleEngine
    from ..video import Clip

BACKENDS = ("local", "ray")


class Backend(ABC):
    """Runs batches of prepared jobs somewhere and reports progress back."""

    name: str = "?"

    @property
    @abstractmethod
    def device(self) -> str:
        """The device results are made on, as shown to users ('cpu', 'cuda:0', 'ray')."""

    @property
    def concurrency(self) -> int:
        """How many batches the queue may hand over at once (one per device it can reach)."""
        return 1

    async def start(self) -> None:
        """Connect or spawn what the backend needs; called once before the first batch."""

    async def stop(self) -> None:
        """Release what ``start`` took; running batches have ended or been cancelled."""

    @abstractmethod
    async def run(self, jobs: list["PreparedJob"], on_progress: "ProgressFn",
                  cancel: threading.Event) -> list["Image.Image | Clip"]:
        """One result per job (a ``Clip`` for a clip job), or raise what the method raised.

        ``on_progress`` may be called from any thread; ``cancel`` is set when every job of
        the batch has been cancelled or the batch timed out."""

    def health(self) -> dict[str, Any]:
        """What /healthz shows about the engine."""
        return {"backend": self.name, "state": "ready"}


def make_backend(engine: "StyleEngine") -> Backend:
    """The backend the engine's settings name."""
    kind = engine.settings.engine
    if kind == "ray":
        from .ray import RayBackend

        return RayBackend(engine)
    if engine.settings.engine_process == "child":
        from .process import ProcessBackend

        return ProcessBackend(engine)
    from .inprocess import InProcessBackend

    return InProcessBackend(engine)
