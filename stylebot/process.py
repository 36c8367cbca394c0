"""`stylebot run`: one process with the engine, its one queue and database, and every front end.

Front ends (``stylebot.frontends``) are the chat adapters whose settings are present
(Discord, Slack) and the web pages (the playground). The pages are served whenever no chat
adapter is configured, so a newcomer gets a working page with no setup; alongside chat
adapters only on a loopback address, where nobody else can reach them (the playground has
no login). The same HTTP server always answers ``GET /healthz``. At shutdown each chat
adapter gets ``ADAPTER_FLUSH_S`` to tell its users about their jobs and return.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.errors import UserError

from .checks import bind_socket, serves_pages, validate_settings
from .frontends import Frontend, chat_frontends, installed_frontends

if TYPE_CHECKING:
    from .service import StyleService
    from .settings import Settings

log = logging.getLogger(__name__)

ADAPTER_FLUSH_S = 5.0
HTTP_SHUTDOWN_S = 3.0  # open page connections get this long once the queue is stopped
BOT = web.AppKey("bot", "Bot")
# What /healthz shows of the backend: where methods run and how that process is doing.
ENGINE_HEALTH = ("backend", "process", "app", "state", "pid", "restarts", "last_crash", "last_crash_at")


@dataclass
class AdapterState:
    """One front end's connection as /healthz reports it."""

    name: str
    state: str = "starting"  # starting, connected, serving, disconnected, failed, stopped
    detail: str = ""
    since: float = field(default_factory=time.time)

    def set(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.state, self.detail):
            log.info("adapter %s: %s%s", self.name, state, f" ({detail})" if detail else "")
        self.state, self.detail, self.since = state, detail, time.time()

    @property
    def alive(self) -> bool:
        return self.state in ("starting", "connected", "serving", "disconnected")

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "since": round(self.since, 3)}


# -- the process -----------------------------------------------------------------------------

class Bot:
    """The engine, queue, database, HTTP server and adapters of one `stylebot run`."""

    def __init__(self, settings: "Settings", *, engine=None,
                 frontends: dict[str, Frontend] | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self.frontends = installed_frontends() if frontends is None else frontends
        self.chat = chat_frontends(self.frontends, settings)
        self.serves_pages = serves_pages(settings, bool(self.chat))
        self.service: "StyleService | None" = None
        self.adapters: dict[str, AdapterState] = {}
        self.url = ""
        self.stopping = False
        self.fatal = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._stopping_event = asyncio.Event()
        self._started_at = time.time()

    async def start(self) -> None:
        """Validate settings, claim the port, open the service, then start every front end."""
        validate_settings(self.settings, self.frontends.values())
        sock = bind_socket(self.settings.http_host, self.settings.http_port)
        try:
            from stylebot.service import StyleService

            self.service = await StyleService.open(self.settings, engine=self._engine)
            app = self.make_web_app()
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_S)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
        except BaseException:
            sock.close()
            await self._close_quietly()
            raise
        host, port = sock.getsockname()[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # an address a browser opens
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        for frontend in self.pages():
            self.adapters[frontend.name] = AdapterState(frontend.name, "serving", self.url)
        for frontend in self.chat:
            self._start_adapter(frontend)

    def pages(self) -> list[Frontend]:
        """The front ends served as web pages on the HTTP server (none when not ``serves_pages``)."""
        if not self.serves_pages:
            return []
        return [f for f in self.frontends.values() if f.mount is not None]

    def make_web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app[BOT] = self
        app.router.add_get("/healthz", self._healthz)
        for frontend in self.pages():
            frontend.mount(app, self.service, self.settings)
        return app

    def health(self) -> dict[str, Any]:
        service = self.service
        engine = service.health() if service is not None else {}
        adapters = {name: state.as_dict() for name, state in self.adapters.items()}
        backend = engine.get("backend", {})
        if self.stopping:
            status = "stopping"
        elif any(not s.alive or s.state == "disconnected" for s in self.adapters.values()):
            status = "degraded"
        elif backend.get("state") in ("restarting", "down"):
            status = "degraded"
        else:
            status = "ok"
        return {"status": status, "uptime_s": round(time.time() - self._started_at, 1),
                "engine": {"device": engine.get("device"), "accepting": engine.get("accepting"),
                           "models_loaded": engine.get("models_loaded", []),
                           **{key: backend[key] for key in ENGINE_HEALTH if key in backend}},
                "queue": {"length": engine.get("waiting", 0) + engine.get("running", 0),
                          "waiting": engine.get("waiting", 0), "running": engine.get("running", 0)},
                "adapters": adapters}

    async def _healthz(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.health)  # the first call may resolve the device
        return web.json_response(body, status=503 if body["status"] == "stopping" else 200)

    # -- adapters --------------------------------------------------------------------------

    def _start_adapter(self, frontend: Frontend) -> None:
        state = self.adapters[frontend.name] = AdapterState(frontend.name)
        self._tasks[frontend.name] = asyncio.create_task(self._run_adapter(state, frontend),
                                                         name=f"adapter-{frontend.name}")

    async def _run_adapter(self, state: AdapterState, frontend: Frontend) -> None:
        try:
            await frontend.run(self.service, self.settings, state, self._stopping_event)
            state.set("stopped")
        except asyncio.CancelledError:
            state.set("stopped")
            raise
        except UserError as exc:
            state.set("failed", exc.message)
            log.error("%s stopped: %s", state.name, exc.message)
        except Exception as exc:
            state.set("failed", f"{type(exc).__name__}: {exc}")
            log.exception("the %s adapter crashed", state.name)
        if not self.stopping:
            self._check_frontends()

    def _check_frontends(self) -> None:
        """With every front end gone the process is useless: stop it, so a supervisor notices."""
        if self.adapters and not any(s.alive for s in self.adapters.values()):
            log.error("no front end is running (%s); stopping.",
                      ", ".join(f"{n}: {s.detail or s.state}" for n, s in self.adapters.items()))
            self.fatal.set()

    # -- stopping ----------------------------------------------------------------------------

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking jobs, finish or cancel the running one, tell waiting users, close the DB."""
        if self.stopping:
            return
        self.stopping = True
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        if self.service is not None:
            running = self.service.running_count
            log.warning("stopping: %d job(s) waiting are told they were not run; %s",
                        self.service.waiting_count,
                        f"the running job gets {grace:g}s to finish" if running else "none running")
            await self.service.stop(grace)
        self._stopping_event.set()
        await self._stop_adapters()
        for frontend in self.pages():
            self.adapters[frontend.name].set("stopped")
        await self._close_quietly()
        log.info("stopped cleanly")

    async def _stop_adapters(self) -> None:
        """Give adapters ``ADAPTER_FLUSH_S`` to deliver their last messages, then cancel them."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=ADAPTER_FLUSH_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_quietly(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.service is not None:
            await self.service.close(grace_s=0)
            self.service = None


def run_bot(settings: "Settings") -> int:
    """`stylebot run`: serve until SIGINT or SIGTERM, then shut down cleanly; the exit status."""
    return asyncio.run(_serve(settings))


async def _serve(settings: "Settings") -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = {"count": 0}

    def on_signal(sig: signal.Signals) -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            log.warning("%s received: stopping after the running job (at most %gs)",
                        sig.name, settings.shutdown_grace_s)
        else:
            log.warning("%s received again: already stopping", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(sig, lambda s, f: loop.call_soon_threadsafe(on_signal, signal.Signals(s)))

    bot = Bot(settings)
    await bot.start()
    _announce(bot)
    stop_wait = asyncio.create_task(stop.wait())
    fatal_wait = asyncio.create_task(bot.fatal.wait())
    await asyncio.wait({stop_wait, fatal_wait}, return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    fatal_wait.cancel()
    await bot.stop()
    print("stylebot stopped.", flush=True)
    return 1 if bot.fatal.is_set() and not stop.is_set() else 0


def _announce(bot: Bot) -> None:
    """The command's own output: where to point a browser (the one thing a newcomer needs)."""
    lines = []
    for frontend in bot.pages():
        lines.append(f"Stylebot {frontend.name}: {bot.url}")
    for frontend in bot.chat:
        state = bot.adapters[frontend.name]
        lines.append(f"{frontend.name.title()}: {state.state}{' - ' + state.detail if state.detail else ''}")
    lines.append(f"Health: {bot.url}healthz   (Ctrl-C to stop)")
    log.info("serving: %s", "; ".join(lines))
    print("\n".join(lines), flush=True)
