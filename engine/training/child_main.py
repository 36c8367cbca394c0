"""What runs inside a training process: one trainer, asking the bot's process for each turn.

The bot's process (``engine/training/child.py``) spawns this with one end of a duplex
``multiprocessing.Pipe`` and answers it; everything that crosses is a small tuple (the
training set and the style image cross as paths, never as pixels).

Messages to the bot:  ("turn",) may I use the device?   ("turned",) done with it
                      ("step", step, total)   ("result", steps)   ("error", kind, detail)
                      ("fatal", reason), sent just before this process exits on its own
Answers from the bot: ("go",) the device is yours for one step
Cancelling (``/cancel``, shutdown) kills this process: a half-trained network is not kept.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ..backends.process_main import EXIT_OUT_OF_MEMORY, die_with_parent, portable_user_error
from ..errors import JobCancelled, UserError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from pathlib import Path

    from ..settings import EngineSettings
    from .fast import TrainConfig

log = logging.getLogger(__name__)


def serve(trainer: str, config: "TrainConfig", settings: "EngineSettings", out_dir: "Path",
          conn: "Connection", log_level: int = logging.INFO) -> None:
    """The training process's main: train, one granted turn per use of the device."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bot's; it stops us in order
    die_with_parent()
    logging.basicConfig(level=log_level,
                        format="%(asctime)s training-process %(levelname)s %(name)s: %(message)s")
    try:
        module, name = trainer.split(":")
        train = getattr(importlib.import_module(module), name)
        result = train(config, settings, out_dir=out_dir, turn=lambda: _turn(conn),
                       on_step=lambda step, total: conn.send(("step", step, total)))
        _tell(conn, ("result", result.step))
    except MemoryError:
        # Python's heap is exhausted: quit (status 75) rather than carry on half-broken.
        _tell(conn, ("fatal", "ran out of memory: MemoryError"))
        os._exit(EXIT_OUT_OF_MEMORY)
    except JobCancelled:
        _tell(conn, ("error", "cancelled", None))
    except UserError as exc:
        _tell(conn, ("error", "user", portable_user_error(exc)))
    except BaseException as exc:  # noqa: BLE001 - a bug: the bot logs it, the user hears one line
        _tell(conn, ("error", "bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
    os._exit(0)  # a loader thread must not keep us alive


def _tell(conn: "Connection", message: tuple) -> None:
    """The last word; when the bot's process has gone there is nobody to tell."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        log.warning("the bot's process went away; the training process stops")


@contextmanager
def _turn(conn: "Connection") -> Iterator[None]:
    """Hold the bot's background turn of the device around one step."""
    conn.send(("turn",))
    conn.recv()  # ("go",): the bot answers once the device is ours
    try:
        yield
    finally:
        conn.send(("turned",))
