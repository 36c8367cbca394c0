"""The application's configuration: the engine's settings plus chat, database and HTTP.

One typed object read at start (``STYLEBOT_*`` variables, then the ``STYLEBOT_CONFIG``
TOML file, then defaults) and passed down. It extends the engine's settings, so the
engine can be handed it, but what is declared here (tokens, the database URL, ports)
stays out of ``engine/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engine.settings import EngineSettings

_HOST_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
SECRETS = ("discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret")


class Settings(EngineSettings):
    # Storage.
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite in home.")
    results_kept_days: float = Field(
        7.0, gt=0, description="How long a result's buttons keep working: its request and input "
                               "images are kept in the database this many days.")
    results_kept_per_user: int = Field(
        50, ge=1, description="At most this many results kept per user for their buttons; "
                              "older ones are deleted first.")

    # Chat adapters.
    discord_token: str | None = None
    discord_guild_id: int | None = None
    discord_shard_count: int | Literal["auto"] | None = Field(
        None, description="Shard the Discord connection: how many shards the bot has in all, or "
                          "'auto' for Discord's recommendation; unset: one connection, no shards.")
    discord_shard_ids: Annotated[list[int] | None, NoDecode] = Field(
        None, description="The shards this process connects, e.g. '0-3' or '0,2' (needs "
                          "discord_shard_count); unset: all of them.")
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
    slack_upload_mb: float = Field(
        1024.0, gt=0, description="Largest clip result uploaded to Slack, in MB; Slack's "
                                  "documented limit for a file is 1 GB (stylebot/fitting.py).")

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
    playground_result_mb: float = Field(
        50.0, gt=0, description="Largest clip result the playground serves, in MB; results "
                                "are kept in memory (stylebot/fitting.py).")
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

    @field_validator("discord_shard_count", mode="before")
    @classmethod
    def _shard_count(cls, value: Any) -> Any:
        """'auto' (any case) or a whole number of at least 1; empty is unset."""
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("", "auto"):
                return text or None
            if not text.isdigit():
                raise ValueError(f"'{value}' is not a number of shards; give e.g. 4, or 'auto'")
            value = int(text)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError("a bot has at least 1 shard")
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: Any) -> Any:
        """'0-3,8' (ranges and single ids, as an operator writes them) or a list, as ids."""
        if value is None or isinstance(value, list):
            return value
        text, ids = str(value).replace(" ", "").strip("[]"), []
        if not text:
            return None
        for part in text.split(","):
            first, _, last = part.partition("-")
            if not first.isdigit() or (last and not last.isdigit()) or (last and int(last) < int(first)):
                raise ValueError(f"'{part}' is not a shard id or range; write e.g. 0-3 or 0,2")
            ids += range(int(first), int(last or first) + 1)
        return ids

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
