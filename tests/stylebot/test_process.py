"""`stylebot run`'s process: settings checked at start, adapters, health, and a clean shutdown."""

from __future__ import annotations

import asyncio
import socket
import sys
import sqlite3

import pytest

from engine.events import Cancelled, Done, Started
from engine.queue import SHUTDOWN_MESSAGE
from engine.request import ImageUpload, Requester, StyleRequest
from stylebot import process
from stylebot.checks import SettingsError, bind_socket, serves_pages
from stylebot.checks import validate_settings as validate_with
from stylebot.frontends import chat_frontends, installed_frontends
from stylebot.process import Bot
from tests.bot import adapters_for_tests
from tests.bot.adapters_for_tests import chat, with_pages
from tests.bot.helpers import bot_settings, form, png_bytes, running_bot, sse_events

DISCORD_TOKEN = "MTA" + "x" * 21 + ".Gabcde." + "y" * 30
SLACK_BOT = "xoxb-1234567890-abcdefghij"
SLACK_APP = "xapp-1-A0123456789-abcdef"


def with_changes(settings, **changes):
    return settings.model_copy(update=changes)


def validate_settings(settings):
    """What `stylebot run` checks at start, its installed front ends' own checks included."""
    return validate_with(settings, installed_frontends().values())


# -- settings --------------------------------------------------------------------------------

def test_good_settings_pass(settings):
    assert isinstance(validate_settings(with_changes(settings, discord_token=DISCORD_TOKEN)), list)


@pytest.mark.parametrize("changes, message", [
    ({"discord_token": "Bot " + DISCORD_TOKEN}, "without 'Bot ' in front"),
    ({"discord_token": "hunter2"}, "does not look like a Discord bot token"),
    ({"discord_token": DISCORD_TOKEN.replace(".", " ", 1)}, "does not look like a Discord bot token"),
    ({"slack_bot_token": "xoxp-1234567890-abcdefghij", "slack_app_token": SLACK_APP},
     "must start with 'xoxb-' (that is a user token"),
    ({"slack_bot_token": SLACK_BOT, "slack_app_token": "xoxb-nope-123456789"},
     "STYLEBOT_SLACK_APP_TOKEN must start with 'xapp-'"),
    ({"slack_bot_token": SLACK_BOT}, "Slack in socket mode needs STYLEBOT_SLACK_APP_TOKEN"),
    ({"slack_app_token": SLACK_APP}, "STYLEBOT_SLACK_BOT_TOKEN (xoxb-...) is not"),
    ({"slack_bot_token": SLACK_BOT, "slack_mode": "http"}, "needs STYLEBOT_SLACK_SIGNING_SECRET"),
    ({"slack_bot_token": SLACK_BOT, "slack_mode": "http", "slack_signing_secret": "s3cret"},
     "32 hexadecimal characters"),
    ({"hub_entrypoints": {"mine": "owner/repo"}}, "entry 'mine' must look like 'owner/repo:entrypoint'"),
    ({"database_url": "not a url"}, "STYLEBOT_DATABASE_URL 'not a url' is not a database URL"),
    ({"database_url": "postgresql://bot@db/stylebot"},
     "STYLEBOT_DATABASE_URL: PostgreSQL is reached through asyncpg: start the URL with "
     "postgresql+asyncpg://"),
])
def test_bad_settings_are_one_clear_line(settings, changes, message):
    with pytest.raises(SettingsError) as info:
        validate_settings(with_changes(settings, **changes))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_postgres_url_without_asyncpg_says_which_extra(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if the extra were not installed
    with pytest.raises(SettingsError, match=r"needs asyncpg: pip install -e '\.\[postgres\]'"):
        validate_settings(with_changes(settings, database_url="postgresql+asyncpg://bot@db/s"))
    validate_settings(with_changes(settings, database_url="sqlite+aiosqlite:///x.db"))


def test_unwritable_data_folder(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SettingsError, match=r"The data folder '.*a-file/home' \(STYLEBOT_HOME\) is not writable"):
        validate_settings(with_changes(settings, home=blocker / "home"))


def test_missing_weights_folder(settings, tmp_path):
    with pytest.raises(SettingsError, match="STYLEBOT_WEIGHTS_DIR '.*nowhere' is not a folder"):
        validate_settings(with_changes(settings, weights_dir=tmp_path / "nowhere"))


def test_a_device_that_is_not_here(settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SettingsError, match="STYLEBOT_DEVICE is 'cuda' but no CUDA GPU is available"):
        validate_settings(with_changes(settings, device="cuda"))


def test_every_problem_is_listed_once(settings, tmp_path):
    bad = with_changes(settings, discord_token="nope", slack_app_token=SLACK_APP,
                       weights_dir=tmp_path / "nowhere")
    with pytest.raises(SettingsError) as info:
        validate_settings(bad)
    text = str(info.value)
    assert text.startswith("3 problems with the settings:")
    assert text.count("\n  - ") == 3


def test_warnings_do_not_stop_the_start(settings):
    warnings = validate_settings(with_changes(settings, discord_guild_id=1234))
    assert any("STYLEBOT_DISCORD_GUILD_ID is set" in w for w in warnings)
    public = validate_settings(with_changes(settings, http_host="0.0.0.0"))
    assert any("playground has no login" in w for w in public)


def test_the_installed_front_ends_are_found_through_their_entry_points():
    frontends = installed_frontends()
    assert set(frontends) == {"discord", "slack", "playground"}
    assert [f.name for f in frontends.values() if f.is_chat] == ["discord", "slack"]
    assert frontends["playground"].mount is not None


def test_a_front_end_that_cannot_be_imported_is_logged_and_left_out(monkeypatch, caplog):
    from importlib.metadata import EntryPoint

    from stylebot import frontends

    broken = EntryPoint("discord", "bot.discord_not_built:FRONTEND", frontends.ENTRY_POINTS)
    monkeypatch.setattr(frontends, "entry_points", lambda group: [broken])
    assert frontends.installed_frontends() == {}
    assert ("front end discord (bot.discord_not_built:FRONTEND) cannot be loaded: "
            "ModuleNotFoundError") in caplog.text


def test_which_front_ends_run(settings):
    frontends = installed_frontends()
    assert chat_frontends(frontends, settings) == [] and serves_pages(settings, False)
    both = with_changes(settings, discord_token=DISCORD_TOKEN, slack_bot_token=SLACK_BOT)
    assert [f.name for f in chat_frontends(frontends, both)] == ["discord", "slack"]
    assert serves_pages(both, True)  # loopback: only this machine can reach it
    assert not serves_pages(with_changes(both, http_host="0.0.0.0"), True)
    assert serves_pages(with_changes(settings, http_host="0.0.0.0"), False)  # no chat: always


def test_port_in_use_is_reported_before_anything_starts(settings):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(SettingsError, match=f"Port {port} on 127.0.0.1 is already in use"):
            bind_socket("127.0.0.1", port)
        with pytest.raises(SettingsError, match="already in use"):
            asyncio.run(Bot(bot_settings(settings, http_port=port)).start())
        assert not (settings.home / "stylebot.db").exists()
    finally:
        taken.close()
    with pytest.raises(SettingsError, match="'no-such-host.invalid' is not an address"):
        bind_socket("no-such-host.invalid", 0)


# -- adapters ----------------------------------------------------------------------------------

async def test_adapters_report_state_and_are_told_to_stop(settings, monkeypatch):
    monkeypatch.setattr(process, "ADAPTER_FLUSH_S", 0.3)
    adapters_for_tests.SEEN.clear()
    frontends = with_pages(chat("discord", adapters_for_tests.run_polite),
                           chat("slack", adapters_for_tests.run_deaf))
    bot = Bot(bot_settings(settings), frontends=frontends)
    await bot.start()
    try:
        await asyncio.sleep(0.05)
        health = bot.health()
        assert health["status"] == "ok"
        assert (health["engine"]["backend"], health["engine"]["state"]) == ("local", "ready")
        assert health["adapters"]["discord"]["state"] == "connected"
        assert health["adapters"]["discord"]["detail"] == "as TestBot#0001"
        assert health["adapters"]["slack"]["state"] == "starting"
        assert health["adapters"]["playground"]["state"] == "serving"
    finally:
        await bot.stop(grace_s=0)
    # The polite adapter heard "stopping" only once the queue had stopped taking jobs.
    assert adapters_for_tests.SEEN["polite"] == [("connected", True), ("stopping", False)]
    assert adapters_for_tests.SEEN["deaf"] == ["started", "cancelled"]  # after the flush time
    assert bot.adapters["discord"].state == "stopped"


async def test_no_front_end_left_stops_the_process(settings):
    frontends = with_pages(chat("discord", adapters_for_tests.run_refused))
    bot = Bot(bot_settings(settings, http_host="0.0.0.0"), frontends=frontends)
    await bot.start()
    try:
        await asyncio.wait_for(bot.fatal.wait(), 5)
        assert "playground" not in bot.adapters
        assert bot.adapters["discord"].state == "failed"
        assert "refused the token" in bot.adapters["discord"].detail
    finally:
        await bot.stop(grace_s=0)


async def test_health_without_the_playground_is_still_served(settings):
    frontends = with_pages(chat("discord", adapters_for_tests.run_polite))
    async with running_bot(bot_settings(settings, http_host="0.0.0.0"), frontends) as (bot, http):
        async with http.get("/healthz") as response:
            assert response.status == 200
            assert set((await response.json())["adapters"]) == {"discord"}
        async with http.get("/") as response:
            assert response.status == 404
        async with http.get("/api/methods") as response:
            assert response.status == 404


# -- shutdown ----------------------------------------------------------------------------------

def _request(content_image, model: str, user: str = "local") -> StyleRequest:
    return StyleRequest(method="fast", content=ImageUpload(png_bytes(content_image)),
                        requester=Requester("playground", user), options={"model": model})


async def _until_started(handle) -> None:
    async for event in handle.events():
        if isinstance(event, Started):
            return
    raise AssertionError("the job ended before it started")


def _db_rows(settings) -> dict[str, tuple[str, str | None]]:
    path = settings.home / "stylebot.db"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT id, status, error FROM jobs").fetchall()
    conn.close()
    return {job_id: (status, error) for job_id, status, error in rows}


async def test_shutdown_tells_queued_users_and_leaves_a_clean_database(settings, shared_weights,
                                                                       content_image):
    s = bot_settings(settings, shutdown_grace_s=60)
    bot = Bot(s)
    await bot.start()
    service = bot.service
    running = await service.submit(_request(content_image, "candy", "ann"))
    waiting = await service.submit(_request(content_image, "mosaic", "bob"))  # another batch key
    await _until_started(running)
    assert waiting.state == "queued"

    await bot.stop()  # what SIGTERM does; the running job has 60 s to finish

    assert isinstance(await running.wait(), Done)
    told = await waiting.wait()
    assert isinstance(told, Cancelled) and told.reason == SHUTDOWN_MESSAGE
    assert "not run" in told.reason
    assert bot.health()["status"] == "stopping"

    # Nothing half-written: the log closed both jobs, SQLite is consistent, WAL checkpointed.
    rows = _db_rows(s)
    assert rows[running.id][0] == "done"
    assert rows[waiting.id] == ("cancelled", SHUTDOWN_MESSAGE)
    assert not (s.home / "stylebot.db-wal").exists() or (s.home / "stylebot.db-wal").stat().st_size == 0

    from storage import jobs as job_log
    from storage.db import open_database

    db = await open_database(s.resolved_database_url)  # reopens cleanly, migrations already at head
    try:
        assert await job_log.mark_interrupted(db, lambda owner: True) == 0  # nothing was left open
        record = await job_log.get_job(db, waiting.id)
        assert record.status == "cancelled" and record.finished_at is not None
    finally:
        await db.close()


async def test_shutdown_reaches_the_page_and_cancels_after_the_grace(settings, shared_weights,
                                                                     content_image):
    s = bot_settings(settings, shutdown_grace_s=0)
    async with running_bot(s) as (bot, http):
        content = png_bytes(content_image)
        async with http.post("/api/command", data=form("/fast model:udnie", content=content)) as r:
            first = await r.json()
        async with http.post("/api/command", data=form("/fast model:candy", content=content)) as r:
            second = await r.json()
        assert r.status == 200, second
        listening = asyncio.create_task(sse_events(http, second["events"]))
        first_handle = bot.service.queue.handle(first["job"])
        await _until_started(first_handle)
        await asyncio.sleep(0.05)  # the page's stream is open
        await bot.stop()  # grace 0: the running job is asked to stop at once

        page_saw = await asyncio.wait_for(listening, 10)
        assert page_saw[-1]["type"] == "cancelled"
        assert page_saw[-1]["reason"] == SHUTDOWN_MESSAGE
        running_final = await first_handle.wait()
    rows = _db_rows(s)
    assert rows[second["job"]] == ("cancelled", SHUTDOWN_MESSAGE)
    # The running job either stopped at its next step or had already finished; either way
    # its row is closed and agrees with what its user was told.
    expected = "cancelled" if isinstance(running_final, Cancelled) else "done"
    assert rows[first["job"]][0] == expected



async def test_healthz_shows_the_engine_process_and_its_restarts_after_a_crash(settings):
    import os
    import signal

    async def engine_health(http):
        async with http.get("/healthz") as response:
            assert response.status == 200
            return await response.json()

    async with running_bot(bot_settings(settings, engine_process="child")) as (bot, http):
        body = await engine_health(http)
        engine = body["engine"]
        assert (engine["backend"], engine["process"], engine["state"]) == ("local", "child", "ready")
        assert engine["restarts"] == 0 and engine["last_crash"] is None
        assert engine["pid"] not in (None, os.getpid())
        os.kill(engine["pid"], signal.SIGKILL)
        for _ in range(3000):
            body = await engine_health(http)
            if body["engine"]["restarts"] == 1 and body["engine"]["state"] == "ready":
                break
            assert body["status"] in ("ok", "degraded")
            await asyncio.sleep(0.02)
        assert body["status"] == "ok"  # the bot, its HTTP server and its queue never went away
        assert body["engine"]["restarts"] == 1 and "SIGKILL" in body["engine"]["last_crash"]
        assert body["engine"]["pid"] not in (None, engine["pid"])
