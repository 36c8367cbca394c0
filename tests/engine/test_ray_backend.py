"""The ray backend's own rules, beside the contract it shares with local
(test_backend_contract.py): what replicas receive, how they are deployed, what a job
carries, and a clear line when Ray is missing."""

from __future__ import annotations

import asyncio
import pickle
import sys

import pytest

from engine.backends.ray import RayBackend, multiplex_key, replica_settings, travelling
from engine.engine import StyleEngine
from engine.errors import UserError
from engine.settings import EngineSettings
from tests.engine.conftest import toy_request


def test_replicas_never_receive_tokens_or_the_database_url(tmp_path):
    from stylebot.settings import Settings

    app = Settings(home=tmp_path, discord_token="tok-7f3a-secret", max_side=300,
                   database_url="postgresql+asyncpg://bot:pw-9c1e@db/stylebot")
    sent = replica_settings(app)
    assert type(sent) is EngineSettings and sent.max_side == 300 and sent.home == tmp_path
    wire = pickle.dumps(sent)
    assert b"tok-7f3a-secret" not in wire and b"pw-9c1e" not in wire


@pytest.mark.parametrize("cpus, threads, expected", [(2.0, 0, 2), (0.5, 0, 1), (2.0, 3, 3)])
def test_a_replica_computes_on_the_cpus_ray_reserved_for_it(tmp_path, cpus, threads, expected):
    settings = EngineSettings(home=tmp_path, ray_cpus_per_replica=cpus, cpu_threads=threads)
    assert replica_settings(settings).cpu_threads == expected


def test_deployment_follows_the_ray_settings(monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[test]'")
    from engine.backends.ray_app import deployment_for

    for name, value in {"MIN_REPLICAS": "2", "MAX_REPLICAS": "5", "TARGET_ONGOING_REQUESTS": "1.5",
                        "MAX_ONGOING_REQUESTS": "3", "MAX_QUEUED_REQUESTS": "7",
                        "CPUS_PER_REPLICA": "2", "GPUS_PER_REPLICA": "1"}.items():
        monkeypatch.setenv(f"STYLEBOT_RAY_{name}", value)
    deployment = deployment_for(EngineSettings())
    assert deployment.max_ongoing_requests == 3 and deployment.max_queued_requests == 7
    assert deployment.ray_actor_options == {"num_cpus": 2.0, "num_gpus": 1.0}
    scaling = deployment._deployment_config.autoscaling_config  # ray 2.60 keeps it here
    assert (scaling.min_replicas, scaling.max_replicas) == (2, 5)
    assert scaling.target_ongoing_requests == 1.5
    fixed = deployment_for(EngineSettings(ray_min_replicas=3, ray_max_replicas=3))
    assert fixed.num_replicas == 3 and fixed._deployment_config.autoscaling_config is None
    monkeypatch.delenv("STYLEBOT_RAY_GPUS_PER_REPLICA")
    assert "num_gpus" not in deployment_for(EngineSettings()).ray_actor_options  # CPU default


def test_the_queue_may_send_one_batch_per_replica_slot(tmp_path):
    settings = EngineSettings(home=tmp_path, ray_max_replicas=4, ray_max_ongoing_requests=2)
    assert RayBackend(StyleEngine(settings, device="cpu")).concurrency == 8


def test_a_job_travels_without_its_raw_uploads_and_routes_by_method_and_weights(tmp_path,
                                                                                portable_toy):
    engine = StyleEngine(EngineSettings(home=tmp_path, device="cpu"), device="cpu")
    job = engine.prepare(toy_request(method="toyportable", steps=3))
    slim = travelling(job)
    assert slim.request.content.data == b"" and job.request.content.data  # original kept
    assert slim.input.content.tobytes() == job.input.content.tobytes()
    assert slim.options == job.options and slim.method is job.method
    assert multiplex_key(job) == "toyportable"
    from engine.methods import get_method

    hub = get_method("hub")
    job.method = hub
    assert multiplex_key(job) == "hub:" + "+".join(hub.weight_names(job.options))


def test_missing_ray_is_one_line_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    backend = RayBackend(StyleEngine(EngineSettings(home=tmp_path, engine="ray"), device="cpu"))
    with pytest.raises(UserError, match=r"not installed: pip install 'stylebot\[ray\]'\.$"):
        asyncio.run(backend.start())


def test_gpu_methods_are_judged_by_the_replicas_gpus_not_the_bot_machines(tmp_path):
    from engine.methods import get_method

    nada = get_method("nada")  # needs a GPU
    for gpus, refused in ((1.0, False), (0.0, True)):
        settings = EngineSettings(home=tmp_path, engine="ray", ray_gpus_per_replica=gpus)
        assert StyleEngine(settings, device="cpu").needs_missing_gpu(nada) is refused


def test_a_ray_client_address_is_refused_at_start(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("STYLEBOT_RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(ValidationError, match="cannot stream progress"):
        EngineSettings()
