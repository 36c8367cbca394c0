"""The embedded backend: methods run on a worker thread of this process, on its device."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

from . import Backend

if TYPE_CHECKING:
    from PIL import Image

    from ..engine import PreparedJob, ProgressFn, StyleEngine
    from ..video import Clip


class InProcessBackend(Backend):
    """One thread at a time runs ``StyleEngine.execute``; the event loop stays free."""

    name = "local"

    def __init__(self, engine: "StyleEngine") -> None:
        self.engine = engine

    @property
    def device(self) -> str:
        return self.engine.device

    async def run(self, jobs: list["PreparedJob"], on_progress: "ProgressFn",
                  cancel: threading.Event) -> list["Image.Image | Clip"]:
        ctx = self.engine.context(on_progress, cancel)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.engine.execute, jobs, ctx)

    def health(self) -> dict[str, Any]:
        return {"backend": self.name, "process": "inline", "state": "ready", "pid": os.getpid(),
                "restarts": 0, "last_crash": None, "models_loaded": self.engine.models.keys()}
