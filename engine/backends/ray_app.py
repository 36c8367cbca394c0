"""The Ray Serve side of the ``ray`` backend: replicas that each host every method on one device.

A replica owns one ``StyleEngine`` (its device, weight store and model cache), built from the
settings the driver sends, and runs one batch at a time on it. ``execute`` is a streaming
generator: progress items, then exactly one outcome item. Outcomes travel as data, not as
raised exceptions, so the queue on the driver sees the very exception the method raised
(a ``UserError`` with the user's line, ``JobCancelled``, a bug) whatever Ray does to errors.
The driver side lives in ``engine/backends/ray.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import threading
import traceback
from typing import TYPE_CHECKING, Any, AsyncIterator

from ray import serve

from ..errors import JobCancelled, UserError

if TYPE_CHECKING:
    from ..engine import PreparedJob
    from ..settings import EngineSettings

log = logging.getLogger(__name__)

DEPLOYMENT_NAME = "StyleReplica"
# Method+weights keys a replica advertises for routing. The weights themselves stay in the
# engine's model cache, bounded by model_memory_mb; this only steers jobs to warm replicas.
KEYS_PER_REPLICA = 8


class StyleReplica:
    """One device, every method; weights stay loaded between jobs (multiplexed by method and
    weights, so Serve sends a job to a replica that already holds what it needs)."""

    def __init__(self, settings: "EngineSettings") -> None:
        from ..engine import StyleEngine

        self.engine = StyleEngine(settings)
        self._device_lock = threading.Lock()  # one batch at a time on the device

    @serve.multiplexed(max_num_models_per_replica=KEYS_PER_REPLICA)
    async def hold(self, key: str) -> str:
        """Tell Serve this replica holds ``key``; the method loads the weights on first use."""
        return key

    async def execute(self, batch_id: str, jobs: list["PreparedJob"]) -> AsyncIterator[tuple]:
        """Yield ("progress", fraction, stage, preview)... then ("done", results) or
        ("error", exception). Cancelling the stream stops the method at its next step."""
        key = serve.get_multiplexed_model_id()
        if key:
            await self.hold(key)
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def on_progress(fraction: float, stage: str, preview) -> None:
            loop.call_soon_threadsafe(items.put_nowait, ("progress", fraction, stage, preview))

        ctx = self.engine.context(on_progress, cancel)

        def work() -> list[Any]:
            with self._device_lock:
                ctx.check_cancelled()
                return self.engine.execute(jobs, ctx)

        log.info("batch %s: %d job(s) of %s on %s (pid %d)", batch_id, len(jobs),
                 jobs[0].method.name, self.engine.device, os.getpid())
        future = loop.run_in_executor(None, work)
        future.add_done_callback(lambda _: items.put_nowait(None))
        try:
            while (item := await items.get()) is not None:
                yield item
            try:
                outcome: tuple = ("done", future.result())
            except Exception as exc:  # noqa: BLE001 - handed to the driver as data
                outcome = ("error", portable(exc))
            yield outcome
        finally:
            if not future.done():
                cancel.set()  # the caller went away or cancelled: stop between steps
                log.info("batch %s cancelled; waiting for its method to stop", batch_id)
                await asyncio.wait([future])  # the device is busy until the method returns
                if not future.cancelled() and future.exception() is not None:
                    log.info("batch %s stopped: %s", batch_id, type(future.exception()).__name__)


def portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a RuntimeError naming it; a bug carries this
    replica's traceback as a note, so the driver's log shows where it happened."""
    if not isinstance(exc, (UserError, JobCancelled)):
        exc.add_note(f"raised on Ray replica pid {os.getpid()}:\n"
                     + "".join(traceback.format_exception(exc)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception is reduced the same way
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def build_app(settings: "EngineSettings"):
    """The Serve application for ``settings``; its replicas receive ``settings``."""
    return deployment_for(settings).bind(settings)


def deployment_for(settings: "EngineSettings"):
    """The replicas' deployment: queue bounds, autoscaling and resources from ``settings``."""
    s = settings
    options: dict[str, Any] = {"num_cpus": s.ray_cpus_per_replica}
    if s.ray_gpus_per_replica:
        options["num_gpus"] = s.ray_gpus_per_replica
    scaling: dict[str, Any]
    if s.ray_max_replicas <= s.ray_min_replicas:
        scaling = {"num_replicas": s.ray_min_replicas}
    else:
        scaling = {"autoscaling_config": {
            "min_replicas": s.ray_min_replicas, "max_replicas": s.ray_max_replicas,
            "initial_replicas": max(1, s.ray_min_replicas),
            "target_ongoing_requests": s.ray_target_ongoing_requests}}
    return serve.deployment(
        StyleReplica, name=DEPLOYMENT_NAME, ray_actor_options=options,
        max_ongoing_requests=s.ray_max_ongoing_requests,
        max_queued_requests=s.ray_max_queued_requests,
        health_check_period_s=5, graceful_shutdown_timeout_s=5, **scaling)
