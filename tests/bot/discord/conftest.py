"""Fixtures for the Discord adapter: a fake Discord, a real service on toy methods, a logged-in bot."""

from __future__ import annotations

import asyncio

import discord
import pytest
import yarl

from engine import methods
from stylebot.settings import Settings
from stylebot.service import StyleService
from tests.bot.discord.fake_discord import FakeDiscord



@pytest.fixture
async def fake():
    server = FakeDiscord()
    await server.start()
    original = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.api  # REST, interaction callbacks and webhooks
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    yield server
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = original
    await server.stop()


@pytest.fixture
def bot_methods(toy_methods, monkeypatch):
    """The toy methods, plus stand-ins registered under the names of sd and nada."""
    from tests.bot.discord import toys

    monkeypatch.setitem(methods.METHOD_PATHS, "sd", "tests.bot.discord.toys:ToySd")
    monkeypatch.setitem(methods.METHOD_PATHS, "nada", "tests.bot.discord.toys:ToyNada")
    methods.get_method.cache_clear()
    toys.PROMPTS.clear()
    yield toy_methods
    methods.get_method.cache_clear()


@pytest.fixture
def bot_settings(tmp_path):
    return Settings(home=tmp_path / "home", device="cpu", weights_dir=None, allow_downloads=False,
                    max_upload_mb=1, jobs_per_user=2, queue_size=3, discord_token="test-token",
                    chat_rate_limit=50)


@pytest.fixture
async def service(bot_settings, bot_methods):
    svc = await StyleService.open(bot_settings)
    yield svc
    bot_methods.GATE.set()
    await svc.close(grace_s=1)


@pytest.fixture
async def bot(service, fake):
    """A real StylebotClient logged in to the fake; tests feed it gateway payloads."""
    from bot.discord.app import StylebotClient

    client = StylebotClient(service, service.settings, edit_interval_s=0.05)
    await client.login("test-token")
    yield client
    await asyncio.wait_for(client.flow.idle(), 10)
    await client.close()


def send(client, payload: dict) -> dict:
    """Hand a raw gateway payload to discord.py's own INTERACTION_CREATE handler."""
    client._connection.parse_interaction_create(payload)
    return payload


def image_of(upload):
    """The uploaded file, opened as an image."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(upload.data))
