"""The application's settings: the engine's plus chat tokens, the database and HTTP."""

from engine.settings import EngineSettings
from stylebot.settings import Settings


def test_app_settings_extend_the_engine_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path))
    monkeypatch.setenv("STYLEBOT_MAX_SIDE", "512")
    monkeypatch.setenv("STYLEBOT_HTTP_PORT", "9000")
    s = Settings()
    assert isinstance(s, EngineSettings)
    assert s.max_side == 512 and s.http_port == 9000
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'stylebot.db'}"


def test_secrets_are_masked_in_public_view():
    s = Settings(discord_token="abc.def.ghi", slack_signing_secret="shh")
    public = s.public_dict()
    assert public["discord_token"] == "***" and public["slack_signing_secret"] == "***"
    assert public["slack_bot_token"] is None
