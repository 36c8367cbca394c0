"""The Slack adapter under test: a real Bolt app served over HTTP, a fake Slack beside it."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from engine import methods
from tests.engine.conftest import png_bytes

from .driver import SlackDriver
from .fake_slack import FakeSlack

BOT_TOKEN = "xoxb-1234567890-abcdefghij"
APP_TOKEN = "xapp-1-A0123456789-abcdef"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def slack_toys(toy_methods, monkeypatch):
    """The engine's toy methods plus this folder's tint and prompt toys."""
    monkeypatch.setitem(methods.METHOD_PATHS, "tint", "tests.bot.slack.toys:ToyTint")
    monkeypatch.setitem(methods.METHOD_PATHS, "toyprompt", "tests.bot.slack.toys:ToyPrompt")
    methods.get_method.cache_clear()
    yield toy_methods
    methods.get_method.cache_clear()


@pytest.fixture
async def fake():
    server = await FakeSlack(BOT_TOKEN, APP_TOKEN).start()
    yield server
    await server.stop()


@pytest.fixture
def slack_settings(settings):
    return settings.model_copy(update=dict(
        slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_signing_secret=SECRET,
        slack_mode="http", slack_image_window_s=600, max_upload_mb=0.5, jobs_per_user=2,
        queue_size=4, http_host="127.0.0.1"))


@pytest.fixture
async def service(slack_settings, slack_toys):
    from stylebot.service import StyleService

    svc = await StyleService.open(slack_settings)
    yield svc
    slack_toys.GATE.set()
    await svc.close(grace_s=1)


@pytest.fixture
async def slack(fake, service, slack_settings):
    """A SlackBot whose Web API is the fake, served on a local port, and a driver for it."""
    from bot.slack.app import HTTP_PATH, SlackBot

    bot = SlackBot(service, slack_settings, client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url),
                   file_origins={fake.base}, edit_interval_s=0)
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{HTTP_PATH}"
    async with aiohttp.ClientSession() as http:
        yield SlackDriver(http, url, SECRET, fake, bot)
    await bot.close()
    await runner.cleanup()


@pytest.fixture
def photo():
    return png_bytes((48, 32), (200, 30, 30))
