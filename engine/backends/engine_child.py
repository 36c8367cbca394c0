"""One engine process as the bot's process sees it: spawn, talk, notice death, kill.

A reader thread receives the process's messages and hands them to the event loop; the
pipe reaching end-of-file is how death is noticed, whatever the cause, and the exit
status says why.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from . import wire
from .process_main import EXIT_OUT_OF_MEMORY, serve

if TYPE_CHECKING:
    from multiprocessing.context import SpawnContext

    from ..settings import EngineSettings

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0  # an engine told to stop gets this long before it is killed
PIPE_BYTES = 1 << 20  # the default maximum pipe size an unprivileged process may ask for
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

_SIGNAL_HINTS = {
    signal.SIGKILL: "killed by SIGKILL: the out-of-memory killer or an operator",
    signal.SIGABRT: "aborted by SIGABRT: a native library gave up",
    signal.SIGSEGV: "crashed with SIGSEGV: a segmentation fault in native code",
    signal.SIGBUS: "crashed with SIGBUS: a bad memory access in native code",
    signal.SIGTERM: "terminated by SIGTERM",
}


def widen_pipes(*conns: Any) -> None:
    """Grow pipes to ``PIPE_BYTES`` (Linux): a 512 px image then crosses in one write,
    without the writer waiting for the reader 64 KiB at a time."""
    for conn in conns:
        try:
            fcntl.fcntl(conn.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except (OSError, AttributeError):  # not Linux, or above /proc/sys/fs/pipe-max-size
            pass


def describe_exit(code: int | None) -> str:
    """Why a process ended, in words for /healthz and the logs."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"killed by signal {-code}"
        return _SIGNAL_HINTS.get(sig, f"killed by {sig.name}")
    if code == EXIT_OUT_OF_MEMORY:
        return "ran out of memory"
    return f"exited with status {code}"


def engine_settings(settings: "EngineSettings") -> "EngineSettings":
    """Only the engine's own fields cross: chat tokens and database URLs stay in the bot."""
    from ..settings import EngineSettings

    fields = {name: getattr(settings, name) for name in EngineSettings.model_fields}
    return EngineSettings.model_construct(**fields)


class EngineChild:
    """A spawned engine process, its two pipes, and what it said about itself."""

    def __init__(self, context: "SpawnContext", settings: "EngineSettings") -> None:
        self._loop = asyncio.get_running_loop()
        commands_out, self._commands = context.Pipe(duplex=False)
        self._replies, replies_in = context.Pipe(duplex=False)
        widen_pipes(self._commands, self._replies)
        self._ends_for_child = (commands_out, replies_in)
        self.cancel = context.Event()  # shared: set here, seen by the running method there
        self.process = context.Process(
            target=serve, name="stylebot-engine", daemon=True,
            args=(engine_settings(settings), commands_out, replies_in, self.cancel,
                  logging.getLogger().getEffectiveLevel()))
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.ready = asyncio.Event()
        self.exited = asyncio.Event()
        self.pid: int | None = None
        self.device: str | None = None
        self.exit_reason: str | None = None
        self._said: str | None = None  # the process's own last words ("fatal", failed start)
        self._killed_because: str | None = None
        self._send_lock = threading.Lock()

    async def started(self) -> None:
        """Launch the process and wait until it is ready or has died trying."""
        # On the loop's thread: the kernel's parent-death signal (process_main) follows the
        # thread that started the process, and an executor thread may end before we do.
        self.process.start()
        for end in self._ends_for_child:
            end.close()  # the child holds its own copies; ours would hide its death
        self.pid = self.process.pid
        threading.Thread(target=self._read, name=f"engine-reader-{self.pid}", daemon=True).start()
        ready = asyncio.ensure_future(self.ready.wait())
        exited = asyncio.ensure_future(self.exited.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()

    async def send(self, command: tuple, size: int = 0) -> None:
        """Send ``command`` of about ``size`` bytes: on the loop when it fits the pipe (no
        wait, no thread hop), else from a thread. A dead process is noticed by the reader."""
        def write() -> None:
            with self._send_lock:
                try:
                    wire.send(self._commands, command)
                except (OSError, ValueError):
                    pass

        if size < PIPE_BYTES // 2:
            write()
        else:
            await self._loop.run_in_executor(None, write)

    async def next_message(self, timeout: float) -> tuple | None:
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def kill(self, reason: str) -> None:
        if self.process.is_alive():
            self._killed_because = reason
            log.error("killing engine process %s: %s", self.pid, reason)
            self.process.kill()

    async def stop(self) -> None:
        """Ask the process to stop, then kill it if it will not."""
        if self.pid is None:
            return
        await self.send(("stop",))
        try:
            await asyncio.wait_for(self.exited.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            self.kill(f"did not stop within {STOP_WAIT_S:g}s")
            await self.exited.wait()

    def _read(self) -> None:
        """The reader thread: messages to the loop until end-of-file, then why it ended."""
        while True:
            try:
                message = wire.recv(self._replies)
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - an unpicklable message must not hide a death
                log.exception("unreadable message from engine process %s", self.pid)
                continue
            if message[0] == "fatal":
                self._said = message[1]  # read below, in this thread, once the pipe closes
            elif message[0] == "failed_to_start":
                self._said = f"could not start: {message[1]}"
            else:
                self._post(self._on_message, message)
        self.process.join(STOP_WAIT_S)
        if self.process.is_alive():  # closed its pipe yet lives on: end it
            self.process.kill()
            self.process.join()
        code = self.process.exitcode
        reason = self._killed_because or self._said or describe_exit(code)
        self._replies.close()
        self._post(self._on_exit, reason)

    def _post(self, callback: Any, *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    def _on_message(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            self.pid, self.device = message[1], message[2]
            self.ready.set()
        else:
            self.inbox.put_nowait(message)

    def _on_exit(self, reason: str) -> None:
        self.exit_reason = reason
        self.exited.set()
        self.inbox.put_nowait(("exit",))
