"""The Slack adapter: `/sd`, `/stylize`, `/preset`, a message shortcut and @-mentions.

It only translates: Slack payloads become ``StyleRequest``s for ``StyleService`` and job
events become Slack messages. It runs over Socket Mode (no public URL needed) or, with
``STYLEBOT_SLACK_MODE=http``, as an aiohttp endpoint that checks Slack's request signatures.
Its listeners are in ``commands`` and ``ui``; ``flow``, ``inputs`` and ``render`` serve them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from engine.errors import UserError

from .inputs import SLACK_FILE_ORIGINS, Downloader, FileFinder
from .flow import JobFlow
from .ui import Forms
from .commands import Listeners

if TYPE_CHECKING:
    from stylebot.settings import Settings
    from stylebot.service import StyleService

log = logging.getLogger(__name__)

API_URL = "https://slack.com/api/"  # tests point this at a local fake of the Web API
FILE_ORIGINS = SLACK_FILE_ORIGINS  # where downloads (with the bot token) may go
HTTP_PATH = "/slack/events"  # Request URL in the app's settings: https://<host>/slack/events
EDIT_INTERVAL_S = 1.5  # at most one progress edit per message this often (Slack allows ~1/s)
UNREACHABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError)  # offline, DNS, refused


class SlackBot:
    """One Bolt app with its listeners, served over Socket Mode or HTTP."""

    # Backoff between tries to reach Slack at start (first, longest), in seconds.
    RETRY_WAIT_S = (2.0, 120.0)

    def __init__(self, service: "StyleService", settings: "Settings", *,
                 client: AsyncWebClient | None = None, file_origins=None,
                 edit_interval_s: float = EDIT_INTERVAL_S, status=None) -> None:
        self.settings = settings
        self.status = status  # stylebot.process's AdapterState, when run by `stylebot run`
        self.mode = settings.slack_mode
        token = (settings.slack_bot_token or "").strip()
        self.client = client or AsyncWebClient(token=token, base_url=API_URL)
        # Socket Mode requests are exempt from signature checks inside Bolt; HTTP ones never are.
        secret = (settings.slack_signing_secret or "").strip()
        self.app = AsyncApp(client=self.client, signing_secret=secret, name="stylebot",
                            logger=logging.getLogger("bot.slack.bolt"))
        self.flow = JobFlow(service, self.client, edit_interval_s=edit_interval_s,
                            upload_limit=int(settings.slack_upload_mb * 2**20))
        self.finder = FileFinder(self.client, settings.slack_image_window_s)
        self.downloader = Downloader(token, max_bytes=settings.max_upload_bytes,
                                     origins=FILE_ORIGINS if file_origins is None else file_origins)
        self.listeners = Listeners(service, settings, self.client, self.flow, self.finder, self.downloader)
        self.forms = Forms(self.listeners)
        self.listeners.register(self.app)
        self.forms.register(self.app)
        self.state = "starting"
        self.team = ""
        self.bot_user = ""
        self.url = ""
        self.since = time.time()

    # -- HTTP mode ---------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        """The endpoint Slack posts commands, interactions and events to."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(HTTP_PATH, self.handle_http)
        return app

    async def handle_http(self, request: web.Request) -> web.Response:
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (stamp.isascii() and stamp.isdigit()):  # Bolt would crash on int() of it
            log.warning("refused a request with a malformed Slack timestamp from %s", request.remote)
            return web.Response(status=401)
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        if bolt_response.status == 401:
            log.warning("refused a request with a bad or stale Slack signature from %s", request.remote)
        return await to_aiohttp_response(bolt_response)

    # -- running -------------------------------------------------------------------------------

    async def verify(self) -> None:
        """Ask Slack who we are, so a wrong token is one clear line at start."""
        try:
            me = await self.client.auth_test()
        except SlackApiError as exc:
            raise UserError(f"Slack refused STYLEBOT_SLACK_BOT_TOKEN ({exc.response.get('error')}); "
                            "copy the Bot User OAuth Token (xoxb-...) from OAuth & Permissions.") from None
        self.team = me.get("team", "") or me.get("team_id", "")
        self.listeners.team_id = me.get("team_id") or None  # the workspace of per-place settings
        self.bot_user = me.get("user_id", "")

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled, then close; ``ready`` is set once connected (or listening)."""
        try:
            await self.serve(ready)
        except UserError as exc:
            self.state = "failed"  # `stylebot run` shows exc.message
            log.error("slack: %s", exc.message)
            raise
        finally:
            await self.close()

    async def serve(self, ready: asyncio.Event | None) -> None:
        """Connect (Socket Mode) or listen (HTTP), then serve until cancelled.

        While Slack cannot be reached (offline, DNS), each try is one log line and the reason
        shows on /healthz; tries go on with exponential backoff until one gets through.
        """
        first, longest = self.RETRY_WAIT_S
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(UNREACHABLE),
                                           wait=wait_exponential(multiplier=first, max=longest),
                                           before_sleep=self._unreachable, reraise=True):
            with attempt:
                await self.verify()
        if self.mode == "socket":
            await self._serve_socket(ready)
        else:
            await self._serve_http(ready)

    async def _serve_socket(self, ready: asyncio.Event | None) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        app_token = (self.settings.slack_app_token or "").strip()
        try:  # once by hand: the handler itself would retry a refused token forever
            url = (await self.client.apps_connections_open(app_token=app_token))["url"]
        except SlackApiError as exc:
            raise UserError(f"Slack refused STYLEBOT_SLACK_APP_TOKEN ({exc.response.get('error')}); "
                            "create an app-level token with connections:write under Basic "
                            "Information, and turn Socket Mode on.") from None
        handler = AsyncSocketModeHandler(self.app, app_token=app_token)
        handler.client.wss_uri = url
        try:
            await handler.connect_async()
            self._set("connected")
            if ready is not None:
                ready.set()
            await asyncio.Future()  # until cancelled
        finally:
            await handler.close_async()

    async def _serve_http(self, ready: asyncio.Event | None) -> None:
        host = self.settings.http_host
        port = self.settings.slack_http_port
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise UserError(f"Slack's HTTP endpoint cannot listen on {host}:{port} "
                                f"({exc.strerror or exc}).") from None
            bound = runner.addresses[0]
            shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
            self.url = f"http://{shown}:{bound[1]}{HTTP_PATH}"
            self._set("serving", self.url)
            if ready is not None:
                ready.set()
            await asyncio.Future()  # until cancelled
        finally:
            await runner.cleanup()

    def _unreachable(self, retry: RetryCallState) -> None:
        exc = retry.outcome.exception() if retry.outcome else None
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        wait = retry.next_action.sleep if retry.next_action else 0
        self._set("disconnected", f"cannot reach Slack ({reason}); retrying in {wait:.0f} s")
        log.warning("slack: cannot reach Slack (%s); try %d, retrying in %.1f s", reason,
                    retry.attempt_number, wait)

    def _set(self, state: str, detail: str = "") -> None:
        self.state, self.since = state, time.time()
        if self.status is not None:
            self.status.set(state, detail)
        log.info("slack (%s mode): %s%s", self.mode, state, f" at {detail}" if detail else "")

    async def close(self) -> None:
        await self.flow.close()
        await self.downloader.close()
        if self.state != "failed":
            self._set("stopped")

    def health(self) -> dict[str, Any]:
        """The mode, connection state and counters."""
        return {"platform": "slack", "mode": self.mode, "state": self.state, "since": round(self.since, 3),
                "team": self.team, "bot_user": self.bot_user, "url": self.url,
                "requests": self.listeners.requests, "jobs_following": len(self.flow.tasks),
                "failures": self.flow.failures}


def check_settings(settings: "Settings") -> None:
    """What the chosen mode needs; `stylebot run` checks formats, this checks presence."""
    if not settings.slack_bot_token:
        raise UserError("Slack needs STYLEBOT_SLACK_BOT_TOKEN (xoxb-...).")
    if settings.slack_mode == "socket" and not settings.slack_app_token:
        raise UserError("Slack in socket mode needs STYLEBOT_SLACK_APP_TOKEN (xapp-...).")
    if settings.slack_mode == "http" and not settings.slack_signing_secret:
        raise UserError("Slack in http mode needs STYLEBOT_SLACK_SIGNING_SECRET.")


async def run_slack(service: "StyleService", settings: "Settings", *,
                    ready: asyncio.Event | None = None, status=None) -> None:
    """Serve Slack until cancelled; ``ready`` is set once connected (or listening).

    ``status`` is optional: `stylebot run` passes its ``AdapterState`` so /healthz shows
    whether Slack is connected.
    """
    check_settings(settings)
    await SlackBot(service, settings, status=status).run(ready)
