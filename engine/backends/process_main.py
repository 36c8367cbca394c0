"""What runs inside the engine process: one StyleEngine, fed batches over a pipe.

The bot's process (``engine/backends/process.py``) sends commands; this process answers
with messages. Both are plain tuples, written by ``engine/backends/wire.py`` (images as
raw pixels beside the pickle).

Commands:  ("run", batch, [(method path, MethodInput), ...])  ("stop",)
Cancelling: the bot sets a ``multiprocessing.Event`` both processes share; a method sees it
at its next progress call, as it would see the queue's ``threading.Event``.
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
from . import wire

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event as CancelFlag

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
          cancel: "CancelFlag", log_level: int = logging.INFO) -> None:
    """The engine process's main: build the engine, then run batches on this thread until
    told to stop or until the bot's process goes away (the command pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bot's; it stops us in order
    die_with_parent()
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
    worker = _Worker(engine, sender, cancel)
    while True:
        try:
            command = wire.recv(commands)
        except (EOFError, OSError):
            log.warning("the bot's process went away; the engine process stops")
            break
        if command[0] == "run":
            worker.run(command[1], command[2])
        elif command[0] == "stop":
            break
    os._exit(0)  # a thread a method started must not keep us alive


def die_with_parent() -> None:
    """On Linux, have the kernel end this process when the bot's process dies, even mid-batch."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed pipe ends us after the batch
        pass


class _Sender:
    """One writer at a time on the reply pipe (a method may report progress from threads)."""

    def __init__(self, conn: "Connection") -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple) -> None:
        with self._lock:
            wire.send(self._conn, message)


class _Worker:
    """Runs one batch at a time; the bot sets ``cancel`` (shared memory) to stop it."""

    def __init__(self, engine: "StyleEngine", sender: _Sender, cancel: "CancelFlag") -> None:
        self.engine = engine
        self.sender = sender
        self.cancel = cancel
        self.methods: dict[str, "Method"] = {}

    def run(self, batch: int, jobs: list[tuple[str, "MethodInput"]]) -> None:
        from ..engine import PreparedJob

        def on_progress(fraction: float, stage: str, preview) -> None:
            self.sender.send(("progress", batch, fraction, stage, preview))

        try:
            prepared = [PreparedJob(method=self._method(path), input=inp, request=None)  # type: ignore[arg-type]
                        for path, inp in jobs]
            results = self.engine.execute(prepared, self.engine.context(on_progress, self.cancel))  # type: ignore[arg-type]
            self.sender.send(("result", batch, results, self.engine.models.keys()))
        except MemoryError:
            # Python's heap is exhausted: this process may be half-broken, so it quits and
            # the bot starts a fresh one (with the memory back).
            self._die("ran out of memory: MemoryError", EXIT_OUT_OF_MEMORY)
        except JobCancelled:
            self.sender.send(("error", batch, "cancelled", None))
        except UserError as exc:
            self.sender.send(("error", batch, "user", portable_user_error(exc)))
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


def reported_error(kind: str, detail: Any, *, bug: type[Exception], where: str) -> BaseException:
    """The exception a child process reported as ``("error", kind, detail)``, raised again in
    the parent: a cancellation, the user's own error, or ``bug`` with the child's traceback
    logged (``where`` names the process in that log line)."""
    if kind == "cancelled":
        return JobCancelled()
    if kind == "user":
        return detail
    summary, remote_traceback = detail
    log.error("%s traceback:\n%s", where, remote_traceback)
    return bug(summary)


def portable_user_error(exc: UserError) -> Any:
    """The exception itself when it survives pickling, else a plain UserError with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a subclass with an unusual constructor
        return UserError(exc.message)
