"""Which process owns a job, so a start-up closes only the jobs of processes that are gone.

A job row records its owner as ``host/boot/pid/start``: the machine, its boot (Linux's
boot id), the process id and the process's start time (so a reused pid is not mistaken
for the owner). A CLI command run beside a working server sees the server alive and
leaves its jobs alone; after a crash or a reboot the owner is gone and its jobs are
marked interrupted.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    started: str  # the process's start time in clock ticks since boot ('' where unknown)

    def __str__(self) -> str:
        return f"{self.host}/{self.boot}/{self.pid}/{self.started}"

    @classmethod
    def parse(cls, text: str) -> "Owner | None":
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    @classmethod
    def of_process(cls, pid: int) -> "Owner":
        return cls(socket.gethostname(), _boot_id(), pid, _start_ticks(pid) or "")


def this_process() -> Owner:
    return Owner.of_process(os.getpid())


def is_gone(owner: str | None, *, me: Owner | None = None) -> bool:
    """Whether the process that owned a job has ended (None: recorded before owners were)."""
    if owner is None:
        return True
    parsed = Owner.parse(owner)
    if parsed is None:
        return True
    me = me or this_process()
    if parsed.host != me.host:
        return False  # another machine's process: not ours to judge
    if parsed.boot != me.boot:
        return True  # this machine has restarted since
    ticks = _start_ticks(parsed.pid)
    if parsed.started and ticks is not None:
        return ticks != parsed.started  # a different process now has that pid
    return not _pid_exists(parsed.pid)


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, after the command name (which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
