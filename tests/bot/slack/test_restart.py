"""Buttons under a result posted before a restart, clicked after it (the database kept it)."""

from __future__ import annotations

import contextlib

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import render as blocks
from stylebot.service import StyleService

from .conftest import BOT_TOKEN, SECRET
from .driver import SlackDriver
from .test_interactive import REFUSED, first_result, job_of


@contextlib.asynccontextmanager
async def restarted_bot(fake, old_service, old_slack):
    """Stop the old process (bot, then service) and start a new one on the same database."""
    from bot.slack.app import HTTP_PATH, SlackBot

    await old_service.queue.drain_observers()
    await old_slack.bot.close()
    await old_service.close(grace_s=1)
    service = await StyleService.open(old_service.settings)
    bot = SlackBot(service, service.settings, client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url),
                   file_origins={fake.base}, edit_interval_s=0)
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{HTTP_PATH}"
    try:
        async with aiohttp.ClientSession() as http:
            yield SlackDriver(http, url, SECRET, fake, bot)
    finally:
        await bot.close()
        await runner.cleanup()
        await service.close(grace_s=1)


async def test_a_results_buttons_work_after_a_restart(slack, fake, photo, service):
    summary = await first_result(slack, fake, photo)  # tint strength=0.6 seed=5
    job = job_of(summary)
    async with restarted_bot(fake, service, slack) as again:
        assert again.bot.flow.service.recent_result(job) is None  # a new queue: not in memory
        await again.click(summary["ts"], blocks.WEAKER, job, user="U2")
        await fake.delivered(2)
        weaker = again.bot.flow.service.recent_result(job_of(fake.results()[1]))
        assert weaker.meta.seed == 5 and weaker.meta.options["strength"] == 0.4
        assert weaker.request.requester.user_id == "U2"
        assert weaker.request.content.data == photo  # the photo, kept byte for byte

        await again.click(summary["ts"], blocks.INFO, job, user="U2")
        told = await fake.wait_for(lambda: fake.called("chat.postEphemeral"), what="the info")
        assert told[0].args["user"] == "U2"
        assert told[0].args["text"].endswith("```/stylize method:tint strength:0.6 seed:5```")

        await again.click(summary["ts"], blocks.SAVE, job, user="U2")
        view = (await fake.wait_for(lambda: fake.called("views.open")))[0].args["view"]
        status, body = await again.submit(view, user="U2", name="pink")
        assert body["response_action"] == "update"
        _, listing = await again.command("/preset", "list", user="U2")
        assert "`pink`: tint strength=0.6" in listing["text"]


@pytest.mark.security
async def test_a_private_preset_results_buttons_stay_the_owners_after_a_restart(slack, fake, photo,
                                                                                 service):
    fake.share("C1", "U1", [fake.add_file(photo, "secret.png")], age_s=30)
    await slack.command("/preset", "save night method=toystyle steps=2")
    await fake.wait_for(fake.ephemeral_texts, what="the save")
    fake.share("C1", "U1", [fake.add_file(photo, "photo.png")], age_s=10)
    await slack.command("/stylize", "preset=night")
    summary = (await fake.delivered())[0]
    job = job_of(summary)
    async with restarted_bot(fake, service, slack) as again:
        await again.click(summary["ts"], blocks.REROLL, job, user="U2")
        texts = await fake.wait_for(lambda: fake.ephemeral_texts()[1:], what="the refusal")
        assert REFUSED.format("re-roll it") in texts[0]
        assert len(fake.results()) == 1
        await again.click(summary["ts"], blocks.INFO, job, user="U2")
        texts = await fake.wait_for(lambda: fake.ephemeral_texts()[2:], what="the info refusal")
        assert REFUSED.format("see its settings") in texts[0]
        await again.click(summary["ts"], blocks.REROLL, job)  # the owner keeps every button
        await fake.delivered(2)
        rerun = again.bot.flow.service.recent_result(job_of(fake.results()[1]))
        assert rerun.request.requester.user_id == "U1"
        assert [s.filename for s in rerun.request.styles] == ["secret.png"]
