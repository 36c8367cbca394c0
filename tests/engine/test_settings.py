"""The engine's settings come from STYLEBOT_* variables and an optional TOML file, validated at start."""

import pytest
from pydantic import ValidationError

from engine.settings import EngineSettings


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path))
    monkeypatch.setenv("STYLEBOT_MAX_SIDE", "512")
    monkeypatch.setenv("STYLEBOT_WEIGHTS_DIR", str(tmp_path / "w"))
    s = EngineSettings()
    assert s.home == tmp_path and s.max_side == 512 and s.weights_dir == tmp_path / "w"
    assert s.cache_dir == tmp_path / "weights"


def test_config_file_is_read_and_env_wins(monkeypatch, tmp_path):
    config = tmp_path / "stylebot.toml"
    config.write_text('queue_size = 5\njobs_per_user = 3\nsd_model = "/models/sd"\n')
    monkeypatch.setenv("STYLEBOT_CONFIG", str(config))
    monkeypatch.setenv("STYLEBOT_JOBS_PER_USER", "1")
    s = EngineSettings()
    assert s.queue_size == 5 and s.jobs_per_user == 1 and s.sd_model == "/models/sd"


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("STYLEBOT_MAX_SIDE", "10")
    with pytest.raises(ValidationError, match="max_side"):
        EngineSettings()


def test_engine_settings_know_nothing_of_chat_database_or_http():
    fields = set(EngineSettings.model_fields)
    for word in ("discord", "slack", "database", "http", "chat"):
        assert not [f for f in fields if word in f], word


def test_config_file_problems_are_one_line_user_errors(monkeypatch, tmp_path):
    from engine.errors import UserError

    monkeypatch.setenv("STYLEBOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(UserError, match="missing.toml', which is not a file"):
        EngineSettings()
    broken = tmp_path / "broken.toml"
    broken.write_text("queue_size = = 3\n")
    monkeypatch.setenv("STYLEBOT_CONFIG", str(broken))
    with pytest.raises(UserError, match="is not valid TOML"):
        EngineSettings()
