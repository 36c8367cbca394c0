"""What runs inside a training process: one trainer, asking the bot's process for each turn.

The bot's process (``engine/training/child.py``) spawns this with one end of a duplex
``multiprocessing.Pipe`` and answers it; everything that crosses is a small tuple (the
training set and the style image cross as paths, never as pixels).

Messages to the bot:  ("turn",) may I use the device?   ("turned",) done with it
                      ("step", step, total)   ("result", steps)   ("error", kind, detail)
                      ("fatal", reason), sent just before this process exits on its own
Answers from the bot: ("go",) the device is yours for one step   ("stop",) stop now
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import JobCancelled, UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from pathlib import Path

    from ..settings import EngineSettings
    from .fast import TrainConfig

log = logging.getLogger(__name__)

EXIT_OUT_OF_MEMORY = 75  # as the engine process: quit rather than carry on half-broken


def serve(trainer: str, config: "TrainConfig", settings: "EngineSettings", out_dir: "Path",
          conn: "Connection", log_level: int = logging.INFO) -> None:
    """The training process's main: train, one granted turn per use of the device."""
    from ..backends.process_main import _die_with_parent, _portable

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bot's; it stops us in order
    _die_with_parent()
    logging.basicConfig(level=log_level,
                        format="%(asctime)s training-process %(levelname)s %(name)s: %(message)s")
    try:
        module, name = trainer.split(":")
        train = getattr(importlib.import_module(module), name)
        result = train(config, settings, out_dir=out_dir, turn=lambda: _turn(conn),
                       on_step=lambda step, total: conn.send(("step", step, total)))
        conn.send(("result", result.step))
    except MemoryError:
        _die(conn, "ran out of memory: MemoryError", EXIT_OUT_OF_MEMORY)
    except JobCancelled:
        conn.send(("error", "cancelled", None))
    except UserError as exc:
        conn.send(("error", "user", _portable(exc)))
    except (EOFError, OSError):
        log.warning("the bot's process went away; the training process stops")
    except BaseException as exc:  # noqa: BLE001 - a bug: the bot logs it, the user hears one line
        conn.send(("error", "bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
    os._exit(0)  # a loader thread must not keep us alive


@contextmanager
def _turn(conn: "Connection") -> Iterator[None]:
    """Hold the bot's background turn of the device around one step."""
    conn.send(("turn",))
    answer = conn.recv()
    if answer[0] != "go":
        raise JobCancelled()
    try:
        yield
    finally:
        conn.send(("turned",))


def _die(conn: "Connection", reason: str, code: int) -> Any:
    try:
        conn.send(("fatal", reason))
    finally:
        os._exit(code)
