"""Shared fixtures: settings in a temporary home, the staged real weights, sample images, toy methods."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The engine runs on a thread of the test process unless a run asks for the engine process
# (STYLEBOT_ENGINE_PROCESS=child): spawning one per test queue would cost seconds each.
# tests/engine/test_engine_process.py runs the engine process explicitly.
os.environ.setdefault("STYLEBOT_ENGINE_PROCESS", "inline")

REPO = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = Path(os.environ.get("STYLEBOT_TEST_WEIGHTS", REPO.parent / "shared" / "weights"))
# A newcomer has no ../shared; CI proves that case by pointing at an empty folder.
WEIGHTS_STAGED = SHARED_WEIGHTS.is_dir() and any(SHARED_WEIGHTS.iterdir())


@pytest.fixture
def shared_weights() -> Path:
    if not WEIGHTS_STAGED:
        pytest.skip(f"real weights not staged at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture
def settings(tmp_path):
    from stylebot.settings import Settings

    weights_dir = SHARED_WEIGHTS if WEIGHTS_STAGED else None
    return Settings(home=tmp_path / "home", weights_dir=weights_dir, allow_downloads=False,
                    device="cpu", max_side=256)


@pytest.fixture
def weights(settings):
    from engine.weights import WeightStore

    return WeightStore.from_settings(settings)


@pytest.fixture
def make_context(settings, weights):
    """Build a RunContext on CPU that records progress calls."""
    from engine.methods.base import RunContext
    from engine.models import ModelCache

    def factory(cancel_event=None, models=None):
        calls: list[tuple[float, str]] = []
        ctx = RunContext(device="cpu", settings=settings, weights=weights,
                         models=models or ModelCache(2_000_000_000),
                         on_progress=lambda f, stage, preview: calls.append((f, stage)),
                         cancel_event=cancel_event)
        ctx.progress_calls = calls  # type: ignore[attr-defined]
        return ctx

    return factory


@pytest.fixture
def content_image():
    from engine.samples import sample_content

    return sample_content(128)


@pytest.fixture
def style_image():
    from engine.samples import sample_style

    return sample_style(128)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread, restored afterwards.

    Tiny test networks gain nothing from intra-op threads, and on a shared 2-core
    machine OpenMP's spinning workers made such modules 5-100x slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def toy_methods(monkeypatch):
    """Register the toy methods in the real registry for the duration of a test."""
    from engine import methods
    from tests.engine import toy_methods as toys

    monkeypatch.setitem(methods.METHOD_PATHS, "toy", "tests.engine.toy_methods:ToyInvert")
    monkeypatch.setitem(methods.METHOD_PATHS, "toystyle", "tests.engine.toy_methods:ToyStyled")
    monkeypatch.setitem(methods.METHOD_PATHS, "toyfade", "tests.engine.toy_methods:ToyFade")
    monkeypatch.setitem(methods.METHOD_PATHS, "toypreview", "tests.engine.toy_methods:ToyPreview")
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
    toys.BATCHES.clear()
    toys.RAN.clear()
    toys.OOM_ABOVE["side"] = 10**9
    toys.GATE.set()
    yield toys
    toys.GATE.set()
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()


@pytest.fixture
def portable_toy(toy_methods, monkeypatch):
    """Also register ``toyportable`` (the backend contract's toy, whose behaviour is all in its
    options); apart, so listings that the other toys fill keep their size."""
    from engine import methods

    monkeypatch.setitem(methods.METHOD_PATHS, "toyportable", "tests.engine.toy_methods:ToyPortable")
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()
    yield toy_methods
    methods.get_method.cache_clear()
    methods.loadable_methods.cache_clear()


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray for the whole session (Serve runs on it for real, not in its local
    testing mode); skipped where ray is not installed."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[test]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL for the whole session (tests/postgres.py); skipped where none is installed."""
    from tests.postgres import PostgresServer, find_binaries

    bindir = find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb "
                    "on PATH); `apt-get install postgresql` to run the postgres cases")
    pytest.importorskip("asyncpg", reason="asyncpg is missing: pip install -e '.[test]'")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
async def postgres_url(postgres_server):
    """An SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = await postgres_server.create_database()
    yield postgres_server.url(name)
    await postgres_server.drop_database(name)
