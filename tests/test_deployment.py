"""compose.yaml and the Dockerfile agree with the settings they configure.

A renamed setting would otherwise leave the scaled deployment silently on its defaults
(pydantic-settings ignores unknown STYLEBOT_* variables).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stylebot.settings import Settings

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _stylebot_variables(text: str) -> set[str]:
    return set(re.findall(r"\b(STYLEBOT_[A-Z0-9_]+)\b", text))


def test_every_stylebot_variable_in_compose_and_dockerfile_names_a_setting():
    known = {f"STYLEBOT_{name.upper()}" for name in Settings.model_fields}
    used = _stylebot_variables((ROOT / "compose.yaml").read_text())
    used |= _stylebot_variables((ROOT / "Dockerfile").read_text())
    assert used, "compose.yaml configures nothing"
    assert used - known == set()


def test_compose_runs_the_ray_engine_on_postgres_with_a_gpu_worker():
    services = _compose()["services"]
    assert {"postgres", "ray-head", "gpu-worker", "bot"} <= set(services)
    bot_env = services["bot"]["environment"]
    assert bot_env["STYLEBOT_ENGINE"] == "ray"
    assert bot_env["STYLEBOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    worker = services["gpu-worker"]
    assert "--num-gpus=1" in worker["entrypoint"]
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # The image every service runs carries the extras the scaled deployment imports.
    assert services["bot"]["build"]["args"]["EXTRAS"] == "ray,postgres"
    for extra in ("ray", "postgres"):
        assert re.search(rf"^{extra} = \[", (ROOT / "pyproject.toml").read_text(), re.M)
