"""`STYLEBOT_ENGINE=ray stylebot stylize ...` on one machine: the CLI starts a private Ray,
runs the job on a Serve replica, writes the file and stops Ray again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.engine.conftest import png_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
def test_stylize_on_a_private_local_ray(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[test]'")
    (tmp_path / "photo.png").write_bytes(png_bytes((48, 40), (10, 200, 30)))
    (tmp_path / "style.png").write_bytes(png_bytes((32, 32), (250, 0, 0)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STYLEBOT_", "RAY_"))}
    env.update(STYLEBOT_ENGINE="ray", STYLEBOT_HOME=str(tmp_path / "home"), STYLEBOT_DEVICE="cpu",
               STYLEBOT_ALLOW_DOWNLOADS="false", STYLEBOT_RAY_CPUS_PER_REPLICA="0.5",
               PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "stylebot", "stylize", "photo.png",
                           "--style", "style.png", "-o", "out.png", "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = proc.stdout.splitlines()  # nothing of Ray's on stdout
    assert line.startswith("wrote out.png (48x40, hub model ") and line.endswith("s on ray)")
    assert "Traceback" not in proc.stderr
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (48, 40)
