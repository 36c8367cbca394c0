"""One training in a spawned process of its own, as the bot's process sees it.

A crash in the trainer's native code (a CUDA kernel's segfault, an ``abort()``, the
out-of-memory killer) then ends that process only: the bot, the engine process and every
other job carry on, and the training fails with ``TrainingCrashed``. The device is still
shared through the bot's ``DeviceTurns``: the training process asks for a background turn
before each step and says when it is done (``engine/training/child_main.py``), and this
side grants it exactly as a training thread's ``turns.background()`` would, so a stylize
job still waits for at most one training step.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..backends.engine_child import describe_exit, engine_settings
from ..backends.process_main import reported_error
from ..errors import JobCancelled
from .child_main import serve

if TYPE_CHECKING:
    from ..device_turns import DeviceTurns
    from ..settings import EngineSettings
    from .fast import TrainConfig

log = logging.getLogger(__name__)

TRAINER = "engine.training.fast:train"  # imported in the training process (tests swap it)
POLL_S = 0.05  # how often a training waiting for its process's word looks at its cancel flag
JOIN_S = 5.0  # a training process that said its last word gets this long to exit


class TrainingCrashed(Exception):
    """The training process died before it finished; the message says why (for the logs)."""


class TrainingProcessError(Exception):
    """The trainer raised something that is not the user's error (a bug), in its process."""


def train_in_process(config: "TrainConfig", settings: "EngineSettings", out_dir: Path, *,
                     turns: "DeviceTurns", cancel: threading.Event,
                     on_step: Callable[[int, int], None], label: str = "") -> int:
    """Blocking, on a worker thread: train in a new process; the steps done. Raises
    ``JobCancelled`` (``cancel`` set, or ``on_step`` raised it), ``UserError``,
    ``TrainingCrashed`` or ``TrainingProcessError``. The process never outlives the call."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(
        target=serve, name=f"stylebot-train-{label}".rstrip("-"), daemon=True,
        args=(TRAINER, config, engine_settings(settings), Path(out_dir), theirs,
              logging.getLogger().getEffectiveLevel()))
    process.start()
    theirs.close()  # the child holds its own copy; ours would hide its death
    log.info("training %s runs in process %s", label, process.pid)
    finished = False
    try:
        with ExitStack() as turn:
            steps, last_words = _converse(ours, turns, cancel, on_step, turn)
        if steps is not None:
            finished = True
            return steps
        process.join(JOIN_S)
        raise TrainingCrashed(last_words or describe_exit(process.exitcode))
    finally:
        _end(process, finished)
        ours.close()
        if not finished:
            _remove_partial_files(out_dir, config)


def _converse(conn: Any, turns: "DeviceTurns", cancel: threading.Event,
              on_step: Callable[[int, int], None],
              turn: ExitStack) -> tuple[int | None, str | None]:
    """Answer the training process until it ends: (steps, None) once it finished, or
    (None, its last words if it said any) once it died; ``turn`` holds the background
    turn it was granted."""
    said = None
    while True:
        if not conn.poll(POLL_S):
            if cancel.is_set():
                raise JobCancelled()  # mid-step or not: the process is ended, nothing is saved
            continue
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return None, said  # the process died: end-of-file on the pipe, whatever killed it
        kind = message[0]
        if kind == "turn":
            turn.enter_context(turns.background(cancel))  # JobCancelled if cancelled meanwhile
            try:
                conn.send(("go",))
            except (OSError, ValueError):
                return None, said
        elif kind == "turned":
            turn.close()
        elif kind == "step":
            on_step(message[1], message[2])
        elif kind == "result":
            return int(message[1]), None
        elif kind == "fatal":
            said = message[1]
        elif kind == "error":
            raise reported_error(message[1], message[2], bug=TrainingProcessError,
                                 where="training process")


def _end(process: Any, finished: bool) -> None:
    """A finished process exits by itself; any other is killed (cancelled, failed, dying)."""
    if finished:
        process.join(JOIN_S)
    if process.is_alive():
        process.kill()
    process.join()


def _remove_partial_files(out_dir: Path, config: "TrainConfig") -> None:
    """What a process killed mid-write leaves: ``engine.files.atomic_write``'s temporary files."""
    from .fast import resolve_name

    try:
        name = resolve_name(config)
    except Exception:  # noqa: BLE001 - a name the trainer refused wrote nothing
        return
    for partial in Path(out_dir).glob(f".{name}.pth.*.partial"):
        partial.unlink(missing_ok=True)
