"""The engine's own configuration: device, weights, limits, queue and methods.

Values come from ``STYLEBOT_*`` environment variables, an optional TOML file named by
``STYLEBOT_CONFIG``, and the defaults below, in that order of precedence. Chat tokens,
the database and HTTP belong to the application (``stylebot.settings``), which extends
this class; the engine never sees them.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)

from .errors import UserError


def default_home() -> Path:
    """Per-user data folder: $XDG_DATA_HOME/stylebot, else ~/.local/share/stylebot."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stylebot"


def default_cpu_runtime() -> str:
    """ONNX Runtime where it is installed (it is a dependency), else torch."""
    return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STYLEBOT_", extra="ignore",
                                      validate_default=True)

    # Where things live.
    home: Path = Field(default_factory=default_home,
                       description="Data folder: database, weight cache, outputs.")
    weights_dir: Path | None = Field(None, description="Local weights folder, searched first.")
    allow_downloads: bool = Field(True, description="Fetch missing weights on first use.")

    # Compute.
    engine: Literal["local", "ray"] = Field(
        "local", description="Where methods run: 'local' (this machine's device) or 'ray' (a Ray "
        "Serve cluster, see docs/scaling.md).")
    engine_process: Literal["child", "inline"] = Field(
        "child", description="For the 'local' engine: 'child' runs methods in a process of "
        "their own, restarted if it crashes, and each /train training in another; 'inline' on "
        "threads of the bot's process "
        "(simpler to debug, but a crash in native code takes the bot down).")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1'...")
    half_precision: bool = Field(True, description="fp16/bf16 on GPU where a method supports it.")
    model_memory_mb: int = Field(6000, ge=100, description="Budget for models kept loaded (LRU).")
    cpu_runtime: Literal["onnx", "torch"] = Field(
        default_factory=default_cpu_runtime,
        description="What runs hub, fast and adain on CPU: 'onnx' (ONNX Runtime, exported "
                    "once and cached) or 'torch'. GPUs always use torch.")
    cpu_threads: int = Field(0, ge=0, description="Intra-op threads on CPU; 0 chooses from the "
                             "cores this process may use (engine/runtime.py).")
    allow_cpu_nada: bool = Field(False, description="Let StyleGAN-NADA run on CPU (very slow).")

    # Images.
    max_side: int = Field(1024, ge=64, le=8192, description="Longest output side, pixels.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload.")
    max_pixels: int = Field(40_000_000, ge=10_000, description="Decoded pixels allowed (bomb guard).")
    max_request_pixels: int = Field(200_000_000, ge=10_000,
                                    description="Pixels of all a request's images together (decoding time).")

    # Clips (animated GIF/WebP/APNG, short MP4/WebM/MOV).
    max_frames: int = Field(300, ge=1, description="Frames a clip may have.")
    max_video_s: float = Field(20.0, gt=0, description="Seconds a clip may last.")

    # Queue.
    queue_size: int = Field(32, ge=1, description="Jobs waiting, all users together.")
    jobs_per_user: int = Field(2, ge=1, description="Jobs queued or running per user.")
    job_timeout_s: float = Field(900.0, gt=0, description="A job running longer is stopped.")
    max_batch: int = Field(4, ge=1, description="Same-shape jobs run in one forward pass.")

    # Fairness across bot processes sharing one backend (engine/admission.py, docs/scaling.md).
    admission: Literal["auto", "local", "ray"] = Field(
        "auto", description="Who keeps the per-user limits and hands out turns: 'local' (this "
        "process), 'ray' (one shared actor for every bot process on the Ray cluster); 'auto' is "
        "'ray' when engine is 'ray', else 'local'.")
    admission_slots: int = Field(
        1, ge=1, description="Batches the shared backend runs at once, all bot processes "
        "together (its replicas); the shared admission grants this many turns.")
    admission_lease_s: float = Field(
        30.0, gt=0, description="A bot process silent this long is taken for dead: its jobs "
        "count no more and its turns are freed.")
    # Ray (engine = 'ray'; docs/scaling.md).
    ray_address: str | None = Field(
        None, description="Ray cluster to join: 'auto' (the cluster this machine joined with "
        "`ray start`) or the head's 'host:6379'; unset: start a local Ray instance here.")
    ray_app_name: str = Field("stylebot", description="Serve application name; bot processes "
                              "sharing one cluster and one name share its replicas.")
    ray_min_replicas: int = Field(1, ge=1, description="Replicas kept running (each hosts every "
                                  "method on one device).")
    ray_max_replicas: int = Field(1, ge=1, description="Replicas autoscaling may grow to; above "
                                  "ray_min_replicas, Serve scales on ray_target_ongoing_requests.")
    ray_target_ongoing_requests: float = Field(
        1.0, gt=0, description="Batches per replica that autoscaling aims for.")
    ray_max_ongoing_requests: int = Field(
        1, ge=1, description="Batches one replica accepts at once (it runs one at a time on "
        "its device; more only wait there).")
    ray_max_queued_requests: int = Field(
        64, ge=-1, description="Batches waiting in Serve for a free replica (-1: no bound); "
        "beyond it a job is refused as 'busy'.")
    ray_cpus_per_replica: float = Field(
        1.0, ge=0, description="CPUs Ray reserves per replica; its compute threads too, unless "
        "cpu_threads is set.")
    ray_gpus_per_replica: float = Field(
        0.0, ge=0, description="GPUs Ray reserves per replica: 1 on a GPU cluster (one replica "
        "per GPU), 0 on CPU machines.")

    # Methods.
    sd_model: str = Field("stabilityai/sd-turbo", description="HF model id or local folder for `sd`.")
    sd_safety_checker: bool = Field(True, description="Refuse results the safety checker flags.")
    hub_entrypoints: dict[str, str] = Field(
        default_factory=dict,
        description="Extra `hub` models: name -> 'owner/repo:entrypoint' or '/local/dir:entrypoint'.")

    # Stopping.
    shutdown_grace_s: float = Field(30.0, ge=0, description="How long the running job may finish at stop.")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("STYLEBOT_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise UserError(f"STYLEBOT_CONFIG names '{config_file}', which is not a file.")
            try:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            except tomllib.TOMLDecodeError as exc:
                raise UserError(f"STYLEBOT_CONFIG file '{config_file}' is not valid TOML: {exc}.") from None
        return tuple(sources)

    @field_validator("ray_address", mode="after")
    @classmethod
    def _not_ray_client(cls, value: str | None) -> str | None:
        if value and value.startswith("ray://"):
            raise ValueError("a ray:// (Ray Client) address cannot stream progress; join the "
                             "cluster with `ray start --address=HEAD:6379` and use 'auto'")
        return value

    @field_validator("home", "weights_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def cache_dir(self) -> Path:
        return self.home / "weights"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
