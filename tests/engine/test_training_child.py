"""``engine.training.child``: a trainer in a process of its own, as /train runs it.

Small trainers with the real trainer's signature run in real spawned processes: what they
raise crosses as it would from a thread, turns are granted by the bot's ``DeviceTurns``,
and a process that aborts (here while writing its result) is one ``TrainingCrashed`` with
no partial file left. The real trainer's crashes: tests/stylebot/test_train_crash.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.device_turns import DeviceTurns
from engine.errors import JobCancelled, UserError
from engine.files import atomic_write
from engine.settings import EngineSettings
from engine.training import child
from engine.training.fast import TrainConfig

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")

HERE = "tests.engine.test_training_child"


class Result:
    def __init__(self, step: int) -> None:
        self.step = step


def counting_train(config, settings, *, out_dir, turn, on_step):
    """Three turns and three steps, then writes the network file as the real one does."""
    for step in range(1, 4):
        with turn():
            pass
        on_step(step, 3)
    atomic_write(Path(out_dir) / f"{config.name}.pth", lambda tmp: Path(tmp).write_bytes(b"net"))
    return Result(3)


def refusing_train(config, settings, *, out_dir, turn, on_step):
    raise UserError("Training diverged at step 1 (the loss is not finite); lower --lr.")


def buggy_train(config, settings, *, out_dir, turn, on_step):
    raise KeyError("oops")


def aborting_train(config, settings, *, out_dir, turn, on_step):
    """Dies halfway through writing its result, inside a turn."""
    with turn():
        on_step(1, 3)
        atomic_write(Path(out_dir) / f"{config.name}.pth", lambda tmp: os.abort())


@pytest.fixture
def run(tmp_path, monkeypatch):
    settings = EngineSettings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    config = TrainConfig(style=tmp_path / "style.png", images=tmp_path / "photos", name="mine")

    def run_trainer(trainer: str, turns: DeviceTurns | None = None,
                    cancel: threading.Event | None = None, steps: list | None = None) -> int:
        monkeypatch.setattr(child, "TRAINER", f"{HERE}:{trainer}")
        return child.train_in_process(
            config, settings, tmp_path / "out", turns=turns or DeviceTurns(),
            cancel=cancel or threading.Event(),
            on_step=lambda step, total: (steps if steps is not None else []).append(step),
            label="t")

    return run_trainer


def test_steps_and_the_result_come_back_and_the_file_is_written(run, tmp_path):
    steps: list[int] = []
    assert run("counting_train", steps=steps) == 3
    assert steps == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.pth"]


def test_a_user_error_and_a_bug_cross_as_they_would_from_a_thread(run):
    with pytest.raises(UserError, match="^Training diverged at step 1"):
        run("refusing_train")
    with pytest.raises(child.TrainingProcessError, match="KeyError: 'oops'"):
        run("buggy_train")


def test_a_training_waiting_for_its_turn_behind_queued_work_can_be_cancelled(run):
    turns = DeviceTurns()
    turns.watch(lambda: True)  # a stylize job is always queued: no turn is ever granted
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(JobCancelled):
        run("counting_train", turns=turns, cancel=cancel)
    assert not turns.background_held


def test_a_training_process_that_aborts_mid_write_is_a_crash_and_leaves_no_partial_file(run, tmp_path):
    turns = DeviceTurns()
    with pytest.raises(child.TrainingCrashed, match="SIGABRT"):
        run("aborting_train", turns=turns)
    assert not turns.background_held  # the turn the dead process held is free again
    assert list((tmp_path / "out").iterdir()) == []


def hanging_train(config, settings, *, out_dir, turn, on_step):
    """Holds its turn for good: only being killed ends it."""
    with turn():
        on_step(1, 3)
        while True:
            time.sleep(1)


BOT_SCRIPT = """
import sys, threading, time
from pathlib import Path
from engine.device_turns import DeviceTurns
from engine.settings import EngineSettings
from engine.training import child
from engine.training.fast import TrainConfig

home = Path(sys.argv[1])
settings = EngineSettings(home=home, device="cpu", weights_dir=None, allow_downloads=False)
config = TrainConfig(style=home / "style.png", images=home / "photos", name="mine")
child.TRAINER = "tests.engine.test_training_child:hanging_train"
stepped = threading.Event()
threading.Thread(target=child.train_in_process, daemon=True,
                 args=(config, settings, home / "out"),
                 kwargs=dict(turns=DeviceTurns(), cancel=threading.Event(),
                             on_step=lambda *a: stepped.set(), label="t")).start()
stepped.wait(60)
import multiprocessing
[process] = multiprocessing.active_children()
print(process.pid, flush=True)  # inside its step now
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_training_process_dies_with_the_bot_not_only_on_a_crash_of_its_own(tmp_path):
    """A bot killed outright mid-step leaves no training process holding the GPU."""
    from tests.engine.test_engine_process import REPO, _alive

    bot = subprocess.Popen([sys.executable, "-c", BOT_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        training_pid = int(bot.stdout.readline())
        assert _alive(training_pid)
        bot.kill()
        bot.wait(30)
        for _ in range(500):
            if not _alive(training_pid):
                break
            time.sleep(0.02)
        assert not _alive(training_pid)
    finally:
        bot.kill()
        bot.stdout.close()
