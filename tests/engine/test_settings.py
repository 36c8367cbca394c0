"""Settings come from STYLEBOT_* variables and an optional TOML file, validated at start."""

import pytest
from pydantic import ValidationError

from engine.settings import Settings


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path))
    monkeypatch.setenv("STYLEBOT_MAX_SIDE", "512")
    monkeypatch.setenv("STYLEBOT_WEIGHTS_DIR", str(tmp_path / "w"))
    s = Settings()
    assert s.home == tmp_path and s.max_side == 512 and s.weights_dir == tmp_path / "w"
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'stylebot.db'}"
    assert s.cache_dir == tmp_path / "weights"


def test_config_file_is_read_and_env_wins(monkeypatch, tmp_path):
    config = tmp_path / "stylebot.toml"
    config.write_text('queue_size = 5\njobs_per_user = 3\nsd_model = "/models/sd"\n')
    monkeypatch.setenv("STYLEBOT_CONFIG", str(config))
    monkeypatch.setenv("STYLEBOT_JOBS_PER_USER", "1")
    s = Settings()
    assert s.queue_size == 5 and s.jobs_per_user == 1 and s.sd_model == "/models/sd"


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("STYLEBOT_MAX_SIDE", "10")
    with pytest.raises(ValidationError, match="max_side"):
        Settings()


def test_secrets_are_masked_in_public_view():
    s = Settings(discord_token="abc.def.ghi")
    assert s.public_dict()["discord_token"] == "***"


def test_config_file_problems_are_one_line_user_errors(monkeypatch, tmp_path):
    from engine.errors import UserError

    monkeypatch.setenv("STYLEBOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(UserError, match="missing.toml', which is not a file"):
        Settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("queue_size = = 3\n")
    monkeypatch.setenv("STYLEBOT_CONFIG", str(broken))
    with pytest.raises(UserError, match="is not valid TOML"):
        Settings()
