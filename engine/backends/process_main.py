"""What runs inside the engine process: one StyleEngine, fed batches over a pipe.

The bot's process (``engine/backends/process.py``) sends commands; this process answers
with messages. Both are plain tuples pickled by ``multiprocessing.connection``; images
travel pickled as raw pixel bytes (measured against shared memory in bench/README.md).

Commands:  ("run", batch, [(method path, MethodInput), ...])  ("cancel", batch)  ("stop",)
Messages:  ("ready", pid, device)  ("failed_to_start", reason)
           ("progress", batch, fraction, stage, preview)
           ("result", batch, results, models loaded)  ("error", batch, kind, detail)
           ("fatal", reason), sent just before this process exits on its own
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import signal
import threading
import traceback
from typing import TYPE_CHECKING, Any

from ..errors import JobCancelled, UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from ..engine import StyleEngine
    from ..methods.base import Method, MethodInput
    from ..settings import EngineSettings

log = logging.getLogger(__name__)

EXIT_OUT_OF_MEMORY = 75  # the process ran out of memory and quit so its successor starts clean


def method_path(method: "Method") -> str:
    """Where the child imports a method's class from: registered test methods work too."""
    cls = type(method)
    return f"{cls.__module__}:{cls.__qualname__}"


def serve(settings: "EngineSettings", commands: "Connection", replies: "Connection",
          log_level: int = logging.INFO) -> None:
    """The engine process's main: build the engine, then obey commands until told to stop
    or until the bot's process goes away (the command pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bot's; it stops us in order
    logging.basicConfig(level=log_level,
                        format="%(asctime)s engine-process %(levelname)s %(name)s: %(message)s")
    sender = _Sender(replies)
    try:
        from ..engine import StyleEngine

        engine = StyleEngine(settings)
        device = engine.device
    except BaseException as exc:  # noqa: BLE001 - reported to the bot, which shows it on /healthz
        sender.send(("failed_to_start", f"{type(exc).__name__}: {exc}"))
        return
    sender.send(("ready", os.getpid(), str(device)))
    _Worker(engine, sender).obey(commands)
    os._exit(0)  # a method thread still stuck in native code must not keep us alive


class _Sender:
    """One writer at a time on the reply pipe (the worker thread and the main thread share it)."""

    def __init__(self, conn: "Connection") -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self._lock:
            self._conn.send(message)


class _Worker:
    """Runs one batch at a time on a thread, so the main thread can still hear ``cancel``."""

    def __init__(self, engine: "StyleEngine", sender: _Sender) -> None:
        self.engine = engine
        self.sender = sender
        self.cancel = threading.Event()
        self.batch: int | None = None
        self.methods: dict[str, "Method"] = {}

    def obey(self, commands: "Connection") -> None:
        while True:
            try:
                command = commands.recv()
            except (EOFError, OSError):
                log.warning("the bot's process went away; the engine process stops")
                return
            kind = command[0]
            if kind == "run":
                _, batch, jobs = command
                self.cancel = threading.Event()
                self.batch = batch
                threading.Thread(target=self._run, args=(batch, jobs, self.cancel),
                                 name=f"engine-batch-{batch}", daemon=True).start()
            elif kind == "cancel" and command[1] == self.batch:
                self.cancel.set()
            elif kind == "stop":
                self.cancel.set()
                return

    def _run(self, batch: int, jobs: list[tuple[str, "MethodInput"]],
             cancel: threading.Event) -> None:
        from ..engine import PreparedJob

        def on_progress(fraction: float, stage: str, preview) -> None:
            self.sender.send(("progress", batch, fraction, stage, preview))

        try:
            prepared = [PreparedJob(method=self._method(path), input=inp, request=None)  # type: ignore[arg-type]
                        for path, inp in jobs]
            results = self.engine.execute(prepared, self.engine.context(on_progress, cancel))
            self.sender.send(("result", batch, results, self.engine.models.keys()))
        except MemoryError:
            # Python's heap is exhausted: this process may be half-broken, so it quits and
            # the bot starts a fresh one (with the memory back).
            self._die("ran out of memory (MemoryError)", EXIT_OUT_OF_MEMORY)
        except JobCancelled:
            self.sender.send(("error", batch, "cancelled", None))
        except UserError as exc:
            self.sender.send(("error", batch, "user", _portable(exc)))
        except BaseException as exc:  # noqa: BLE001 - a bug in a method: the bot logs it
            self.sender.send(("error", batch, "bug",
                              (f"{type(exc).__name__}: {exc}", traceback.format_exc())))

    def _method(self, path: str) -> "Method":
        if path not in self.methods:
            module, name = path.split(":")
            self.methods[path] = getattr(importlib.import_module(module), name)()
        return self.methods[path]

    def _die(self, reason: str, code: int) -> None:
        try:
            self.sender.send(("fatal", reason))
        finally:
            os._exit(code)


def _portable(exc: UserError) -> Any:
    """The exception itself when it survives pickling, else a plain UserError with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a subclass with an unusual constructor
        return UserError(exc.message)
