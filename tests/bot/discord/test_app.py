"""`stylebot run` with the real Discord adapter: health, and shutdown notices that reach users."""

from __future__ import annotations

from stylebot.process import Bot
from tests.bot.discord.fake_discord import BOB
from tests.bot.helpers import bot_settings
from tests.stylebot.test_process import DISCORD_TOKEN
from tests.bot.discord.test_queue import job_in
from tests.bot.discord.test_stylize import last_edit
from tests.engine.conftest import png_bytes

SHUTDOWN = "🛑 Stylebot is restarting, so your job was not run. Please send it again in a minute (job `{}`)."


async def test_stylebot_run_serves_discord_and_tells_users_when_it_stops(settings, fake, bot_methods):
    fake.token = DISCORD_TOKEN
    bot = Bot(bot_settings(settings, discord_token=DISCORD_TOKEN))
    await bot.start()
    try:
        state = await fake.wait_for(lambda: (lambda s: s if s["state"] == "connected" else None)(
            bot.health()["adapters"]["discord"]))
        assert state["detail"] == "as stylebot"
        bot_methods.GATE.clear()
        content = fake.attachment(png_bytes(), "a.png")
        running = fake.slash("stylize", {"content": content, "method": "toy", "options": "wait=true"})
        await fake.send_interaction(running)
        running_id = job_in(await last_edit(fake, running, "⏳"))
        waiting = fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB)
        await fake.send_interaction(waiting)
        waiting_id = job_in(await last_edit(fake, waiting, "⏳ Queued"))
    finally:
        await bot.stop(grace_s=0)
    # Both users heard why their job ended before the connection closed.
    assert await last_edit(fake, running, "🛑") == SHUTDOWN.format(running_id)
    assert await last_edit(fake, waiting, "🛑") == SHUTDOWN.format(waiting_id)
    assert bot.adapters["discord"].state == "stopped"
