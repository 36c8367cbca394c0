"""A job's owner: alive while its process runs, gone once it ends or the machine restarts."""

from __future__ import annotations

import subprocess
import sys

from stylebot.owners import Owner, is_gone, this_process


def test_this_process_is_alive_and_round_trips_through_text():
    me = this_process()
    assert Owner.parse(str(me)) == me
    assert not is_gone(str(me))


def test_another_process_is_alive_until_it_ends():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = str(Owner.of_process(child.pid))
        assert not is_gone(owner)
    finally:
        child.kill()
        child.wait()
    assert is_gone(owner)


def test_a_reused_pid_a_reboot_and_old_rows_count_as_gone_another_host_does_not():
    me = this_process()
    assert is_gone(str(Owner(me.host, me.boot, me.pid, "1")))  # same pid, another start time
    assert is_gone(str(Owner(me.host, "an-earlier-boot", me.pid, me.started)))
    assert is_gone(None) and is_gone("garbage")
    assert not is_gone(str(Owner("another-host", "its-boot", 1, "5")))
