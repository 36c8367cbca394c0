"""The ``ray`` backend: batches run on Ray Serve replicas, each hosting every method on one device.

The queue stays on this (driver) process; each batch becomes one streaming request to the
Serve application of ``ray_app.py``, routed (``multiplexed_model_id``) to a replica that
already holds the batch's method and weights. Progress streams back as it happens; setting
``cancel`` cancels the request, which stops the method at its next step on the replica. A
replica that dies mid-batch is replaced by Serve; the batch is sent once more under the same
batch id, and a second loss is one clear failure. Settings: ``ray_*`` in engine/settings.py;
operators' guide: docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import JobCancelled, QueueFull, UserError
from . import Backend

if TYPE_CHECKING:
    from PIL import Image

    from ..engine import PreparedJob, ProgressFn, StyleEngine
    from ..settings import EngineSettings
    from ..video import Clip

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.05
ATTEMPTS = 2  # the first try and one retry after a replica is lost


class WorkerLost(UserError):
    """The replica running a batch died twice; the user is told plainly, the log has why."""


class RayBackend(Backend):
    """Sends each batch to the Serve application named by ``ray_app_name``."""

    name = "ray"

    def __init__(self, engine: "StyleEngine") -> None:
        self.engine = engine
        self.settings = engine.settings
        self._handle: Any = None
        self._owns_ray = False  # started Ray itself, so stops it too

    @property
    def device(self) -> str:
        return "ray"

    @property
    def concurrency(self) -> int:
        """Batches the queue may have in flight: what every replica can take at its largest."""
        return self.settings.ray_max_replicas * self.settings.ray_max_ongoing_requests

    async def start(self) -> None:
        if self._handle is None:
            await asyncio.to_thread(self._deploy)

    def _deploy(self) -> None:
        try:
            import ray
            from ray import serve
        except ImportError:
            raise UserError("STYLEBOT_ENGINE=ray needs Ray Serve, which is not installed: "
                            "pip install 'stylebot[ray]'.") from None
        from .ray_app import build_app

        s = self.settings
        if not ray.is_initialized():
            address = s.ray_address or "local"
            log.info("ray: %s", "starting a local instance" if address == "local"
                     else f"joining {address}")
            try:  # replicas' own logs stay in Ray's session folder (/tmp/ray/session_latest/logs)
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(f"Could not reach the Ray cluster at STYLEBOT_RAY_ADDRESS="
                                f"'{address}': {exc}") from None
            self._owns_ray = True
        logging.getLogger("ray.serve").setLevel(log.getEffectiveLevel())  # its INFO is chatty
        serve.start(proxy_location="Disabled")  # handles only, no HTTP proxy
        try:  # waits until every replica is up (Serve logs replicas it cannot place)
            self._handle = serve.run(build_app(replica_settings(s)), name=s.ray_app_name,
                                     route_prefix=None)
        except RuntimeError as exc:  # a replica's constructor failed, e.g. a bad setting there
            raise UserError(f"The Ray Serve application '{s.ray_app_name}' did not start: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
                            "(replica logs: /tmp/ray/session_latest/logs on its node).") from None
        log.info("ray: application %r ready (%d-%d replicas)", s.ray_app_name,
                 s.ray_min_replicas, s.ray_max_replicas)

    async def stop(self) -> None:
        """A Ray this backend started goes with it; on a shared cluster the application stays
        up for the other bot processes (``serve.delete`` by hand retires it)."""
        if self._owns_ray:
            await asyncio.to_thread(self._shutdown)
            self._handle = None  # a later start brings up a fresh Ray

    def _shutdown(self) -> None:
        import ray

        ray.shutdown()  # takes Serve with it (serve.shutdown first only adds retry warnings)
        self._owns_ray = False

    async def run(self, jobs: list["PreparedJob"], on_progress: "ProgressFn",
                  cancel: threading.Event) -> list["Image.Image | Clip"]:
        if self._handle is None:
            raise RuntimeError("the ray backend was not started")
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        batch_id = uuid.uuid4().hex[:8]
        wire = [travelling(job) for job in jobs]
        key = multiplex_key(jobs[0])
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._attempt(batch_id, wire, key, on_progress, cancel)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                if cancel.is_set():
                    raise JobCancelled() from exc
                log.warning("batch %s (%s): replica lost on attempt %d/%d: %s", batch_id,
                            key, attempt, ATTEMPTS, type(exc).__name__)
                if attempt == ATTEMPTS:
                    log.error("batch %s (%s): replica lost twice; giving up", batch_id, key)
                    raise WorkerLost("The machine running your job stopped unexpectedly, twice; "
                                     "please try again in a few minutes.") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, batch_id: str, wire: list["PreparedJob"], key: str,
                       on_progress: "ProgressFn", cancel: threading.Event) -> list[Any]:
        from ray.serve.exceptions import BackPressureError, RequestCancelledError

        handle = self._handle.options(stream=True, multiplexed_model_id=key)
        stream = handle.execute.remote(batch_id, wire)
        watcher = asyncio.create_task(_cancel_when_set(cancel, stream))
        try:
            async for item in stream:
                if item[0] == "progress":
                    on_progress(*item[1:])
                elif item[0] == "done":
                    return item[1]
                else:
                    raise item[1]  # what the method raised, as it raised it
            raise RuntimeError(f"batch {batch_id}: the replica ended without a result")
        except RequestCancelledError as exc:
            raise JobCancelled() from exc
        except BackPressureError as exc:
            raise QueueFull("Every worker is busy and their queues are full; please try again "
                            "in a few minutes.") from exc
        finally:
            watcher.cancel()

    def health(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "app": self.settings.ray_app_name,
                                "state": "ready" if self._handle is not None else "stopped"}
        if self._handle is None:
            return info
        try:
            from ray import serve

            app = serve.status().applications.get(self.settings.ray_app_name)
            info["state"] = app.status.lower() if app is not None else "missing"
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            info["state"] = f"unreachable: {type(exc).__name__}"
        return info


async def _cancel_when_set(cancel: threading.Event, stream: Any) -> None:
    while not cancel.is_set():
        await asyncio.sleep(CANCEL_POLL_S)
    stream.cancel()


def multiplex_key(job: "PreparedJob") -> str:
    """Method and the weights it needs for these options: replicas holding them get the job."""
    names = job.method.weight_names(job.options)
    return job.method.name + (":" + "+".join(names) if names else "")


def travelling(job: "PreparedJob") -> "PreparedJob":
    """The job as sent to a replica: decoded images and options, without the raw uploads
    (already decoded into ``job.input``; no need to ship them twice)."""
    request = job.request
    slim = dataclasses.replace(request, content=dataclasses.replace(request.content, data=b""),
                               styles=[], mask=None)
    return dataclasses.replace(job, request=slim)


def replica_settings(settings: "EngineSettings") -> "EngineSettings":
    """The engine's part of ``settings`` (an application's subclass also holds tokens and
    database URLs, which replicas must never receive). Unless ``cpu_threads`` is set, a
    replica computes on as many threads as the CPUs Ray reserved for it, not on every core
    of a machine it shares with other replicas."""
    from ..settings import EngineSettings

    values = {name: getattr(settings, name) for name in EngineSettings.model_fields}
    if not values["cpu_threads"]:
        values["cpu_threads"] = max(1, int(settings.ray_cpus_per_replica))
    return EngineSettings.model_construct(**values)
