"""`stylebot run` as a real process: config file, printed address, health, signals, exit codes."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(config: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEBOT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if config is not None:
        env["STYLEBOT_CONFIG"] = str(config)
    env.update(extra)
    return env


def _config(tmp_path: Path, weights: Path, **values) -> Path:
    """A STYLEBOT_CONFIG toml file, as an operator would write one."""
    settings = {"home": str(tmp_path / "home"), "weights_dir": str(weights),
                "allow_downloads": False, "device": "cpu", "max_side": 128, "http_port": 0,
                "shutdown_grace_s": 5.0, **values}
    lines = [f"{key} = {json.dumps(value) if not isinstance(value, bool) else str(value).lower()}"
             for key, value in settings.items()]
    path = tmp_path / "stylebot.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, prefix: str, timeout: float = 90.0) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line starting {prefix!r} within {timeout}s; saw {seen}") from None
        if line is None:
            raise AssertionError(f"output ended before {prefix!r}; saw {seen}")
        seen.append(line)
        if line.startswith(prefix):
            return line.strip()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_prints_the_address_serves_and_stops_on_a_signal(tmp_path, shared_weights, sig):
    config = _config(tmp_path, shared_weights)
    proc = subprocess.Popen([sys.executable, "-m", "stylebot", "run"], cwd=REPO, env=_env(config),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = _lines(proc.stdout)
        line = _wait_for(out, "Stylebot playground: ")
        url = line.split(": ", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "healthz", timeout=30) as response:
            health = json.load(response)
        assert health["status"] == "ok" and health["engine"]["device"] == "cpu"
        assert health["adapters"]["playground"]["state"] == "serving"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"Stylebot" in response.read()

        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        assert _wait_for(out, "stylebot stopped.", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr
    with sqlite3.connect(tmp_path / "home" / "stylebot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_bad_setting_exits_with_one_line(tmp_path, shared_weights):
    config = _config(tmp_path, shared_weights)
    proc = subprocess.run([sys.executable, "-m", "stylebot", "run"], cwd=REPO, timeout=120,
                          env=_env(config, STYLEBOT_DISCORD_TOKEN="Bot abc.def.ghi"),
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert ("stylebot: STYLEBOT_DISCORD_TOKEN should be the bare bot token, without 'Bot ' in front."
            in proc.stderr.splitlines())
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_port_in_use_exits_with_one_line(tmp_path, shared_weights):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        config = _config(tmp_path, shared_weights)
        proc = subprocess.run([sys.executable, "-m", "stylebot", "run", "--port", str(port)],
                              cwd=REPO, env=_env(config), capture_output=True, text=True, timeout=120)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert (f"stylebot: Port {port} on 127.0.0.1 is already in use; stop the other program or "
            "choose another port (--port or STYLEBOT_HTTP_PORT).") in proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
