"""The application's configuration: the engine's settings plus chat, database and HTTP.

One typed object read at start (``STYLEBOT_*`` variables, then the ``STYLEBOT_CONFIG``
TOML file, then defaults) and passed down. It extends the engine's settings, so the
engine can be handed it, but what is declared here (tokens, the database URL, ports)
stays out of ``engine/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from engine.settings import EngineSettings

_HOST_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
SECRETS = ("discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret")


class Settings(EngineSettings):
    # Storage.
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite in home.")

    # Chat adapters.
    discord_token: str | None = None
    discord_guild_id: int | None = None
    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_mode: Literal["socket", "http"] = "socket"
    slack_image_window_s: int = Field(600, ge=0, description="How recent a shared image may be.")
    slack_http_port: int = Field(3000, ge=0, le=65535, description="Port for Slack's HTTP mode.")
    slack_admin_group: str | None = Field(
        None, description="Slack user group id (S...) whose members may use /stats, besides "
                          "workspace admins and owners.")
    chat_rate_limit: int = Field(5, ge=1, description="Jobs one chat user may start per minute.")

    # Styles users train from chat (/train), in the background between stylize jobs.
    training_images: Path | None = Field(
        None, description="Folder of content photos /train learns from (searched recursively); "
                          "unset: /train is off.")
    allow_cpu_training: bool = Field(False, description="Let /train run on a CPU-only server (slow).")
    training_steps: int = Field(2000, ge=1, description="Optimisation steps of one /train.")
    training_image_size: int = Field(256, ge=16, le=1024, description="/train's content crop, pixels.")
    training_batch_size: int = Field(4, ge=1, le=64, description="Content photos per /train step.")
    trained_styles_per_user: int = Field(5, ge=0, description="Styles one user may keep.")
    trained_mb_per_user: float = Field(100.0, ge=0, description="Disk one user's styles may take.")
    trainings_at_once: int = Field(1, ge=1, description="/train runs at the same time, all users.")

    # The HTTP server (playground and /healthz).
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    public_host: str | None = Field(
        None, description="The name a reverse proxy serves the playground under "
                          "(e.g. stylebot.example.org): the only Host answered besides loopback.")

    @field_validator("public_host", mode="before")
    @classmethod
    def _host_name_only(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        name = str(value).strip().lower()
        if not _HOST_NAME_RE.fullmatch(name):
            raise ValueError(f"'{value}' is not a host name; give the bare name, "
                             "e.g. stylebot.example.org (no scheme, port or path)")
        return name

    @field_validator("training_images", mode="after")
    @classmethod
    def _expand_training_images(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'stylebot.db'}"

    def public_dict(self) -> dict[str, Any]:
        """Settings with secrets masked, for logs and the health endpoint."""
        data = self.model_dump(mode="json")
        for key in SECRETS:
            if data.get(key):
                data[key] = "***"
        return data
