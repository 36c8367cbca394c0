"""The Slack app as `stylebot run` serves it: Socket Mode by default, HTTP mode by configuration."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import bot.slack.app as slack_module
from engine.errors import UserError

from .conftest import BOT_TOKEN
from .driver import SlackDriver


@pytest.fixture
def pointed_at(fake, monkeypatch):
    """The Web API and file origin of a SlackBot built from settings pointed at the fake, as
    Route.BASE is for Discord."""
    monkeypatch.setattr(slack_module, "API_URL", fake.api_url)
    monkeypatch.setattr(slack_module, "FILE_ORIGINS", frozenset({fake.base}))
    return fake


@contextlib.asynccontextmanager
async def running(service, settings):
    """A SlackBot built from settings as run_slack builds it, served until the block ends."""
    bot = slack_module.SlackBot(service, settings)
    ready = asyncio.Event()
    task = asyncio.create_task(bot.run(ready))
    done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())], timeout=15,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it
    try:
        yield bot
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_socket_mode_connects_and_serves_a_slash_command(pointed_at, service, slack_settings, photo):
    fake = pointed_at
    settings = slack_settings.model_copy(update={"slack_mode": "socket"})
    fake.share("C1", "U1", [fake.add_file(photo)])
    async with running(service, settings) as bot:
        health = bot.health()
        assert health["state"] == "connected" and health["mode"] == "socket"
        assert health["bot_user"] == "UBOT"
        assert [c.token for c in fake.called("apps.connections.open")] == [settings.slack_app_token]
        payload = {"command": "/stylize", "text": "method=tint steps=1", "user_id": "U1",
                   "user_name": "u1", "channel_id": "C1", "team_id": "T0TEST",
                   "trigger_id": "trigger-1", "response_url": f"{fake.base}/response/1"}
        await fake.send_envelope("slash_commands", payload, envelope_id="env-42")
        ack = await fake.wait_for(lambda: fake.socket_acks, what="the ack over the socket")
        assert ack[0]["envelope_id"] == "env-42"
        await fake.wait_for(lambda: fake.called("files.completeUploadExternal"), what="the result")
    assert bot.health()["state"] == "stopped"


async def test_http_mode_listens_and_checks_signatures(pointed_at, service, slack_settings, photo,
                                                       monkeypatch):
    import aiohttp

    fake = pointed_at
    slack_settings = slack_settings.model_copy(update={"slack_http_port": 0})  # any free port
    fake.share("C1", "U1", [fake.add_file(photo)])
    async with running(service, slack_settings) as bot:
        health = bot.health()
        assert health["state"] == "serving" and health["url"].endswith("/slack/events")
        async with aiohttp.ClientSession() as http:
            driver = SlackDriver(http, health["url"], slack_settings.slack_signing_secret, fake, None)
            status, _ = await driver.command("/stylize", "method=tint", )
            assert status == 200
            status, _ = await driver.post(driver.command_body("/stylize", "method=tint"), secret="0" * 32)
            assert status == 401
            await fake.wait_for(lambda: fake.called("files.completeUploadExternal"), what="the result")
        assert bot.health()["requests"] == 1
    assert not fake.called("apps.connections.open")


async def test_refused_tokens_stop_with_one_clear_line(pointed_at, service, slack_settings):
    socket = {"slack_mode": "socket"}
    wrong_bot = slack_settings.model_copy(update={"slack_bot_token": BOT_TOKEN + "x", **socket})
    with pytest.raises(UserError, match=r"Slack refused STYLEBOT_SLACK_BOT_TOKEN \(invalid_auth\)"):
        await slack_module.run_slack(service, wrong_bot)
    wrong_app = slack_settings.model_copy(update={"slack_app_token": "xapp-1-wrong-000000", **socket})
    with pytest.raises(UserError, match=r"Slack refused STYLEBOT_SLACK_APP_TOKEN \(invalid_auth\)"):
        await slack_module.run_slack(service, wrong_app)
    no_secret = slack_settings.model_copy(update={"slack_signing_secret": None})
    with pytest.raises(UserError, match="needs STYLEBOT_SLACK_SIGNING_SECRET"):
        await slack_module.run_slack(service, no_secret)


async def test_stylebot_run_starts_slack_and_reports_it_in_healthz(pointed_at, slack_settings, monkeypatch):
    from stylebot.process import Bot
    from tests.bot.helpers import bot_settings

    settings = bot_settings(slack_settings, slack_mode="socket")
    bot = Bot(settings)
    await bot.start()
    try:
        await pointed_at.wait_for(lambda: bot.health()["adapters"]["slack"]["state"] == "connected",
                                  what="Slack")
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(bot.url + "healthz") as resp:
                body = await resp.json()
        assert body["adapters"]["slack"]["state"] == "connected"
        assert body["status"] == "ok"
    finally:
        await bot.stop(grace_s=0)
    assert bot.health()["adapters"]["slack"]["state"] == "stopped"


@pytest.mark.security
async def test_slack_unreachable_at_start_is_one_line_a_reason_on_health_and_retries(
        service, slack_settings, monkeypatch, caplog):
    """Offline at start: once a traceback and 'degraded' with no reason; now one line per try."""
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused, as offline
    monkeypatch.setattr(slack_module, "API_URL", f"http://127.0.0.1:{port}/api/")
    monkeypatch.setattr(slack_module.SlackBot, "RETRY_WAIT_S", (0.05, 0.2))
    seen: list[tuple[str, str]] = []

    class Status:
        def set(self, state: str, detail: str = "") -> None:
            seen.append((state, detail))

    bot = slack_module.SlackBot(service, slack_settings.model_copy(update={"slack_mode": "socket"}),
                                status=Status())
    task = asyncio.create_task(bot.run())
    try:
        for _ in range(100):
            if len([r for r in caplog.records if "cannot reach Slack" in r.getMessage()]) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tries = [r for r in caplog.records if "cannot reach Slack" in r.getMessage()]
    assert len(tries) >= 3 and all(r.exc_info is None for r in tries)  # retried, no traceback
    assert "Traceback" not in caplog.text
    state, detail = next(s for s in seen if s[0] == "disconnected")
    assert detail.startswith("cannot reach Slack") and "retrying in" in detail
