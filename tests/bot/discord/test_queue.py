"""/queue, /cancel and /methods."""

from __future__ import annotations



from engine import methods
from tests.bot.discord.conftest import send
from tests.bot.discord.fake_discord import APP_ID, BOB
from tests.bot.discord.test_stylize import ephemeral_refusal, last_edit
from tests.engine.conftest import png_bytes


def job_in(text: str) -> str:
    return text.split("(job `")[1].split("`")[0]


async def answer_of(fake, payload) -> str:
    call = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
    assert call.json["data"]["flags"] & 64
    return call.json["data"]["content"]


async def test_queue_lists_your_jobs_and_cancel_stops_them(bot, fake, bot_methods):
    bot_methods.GATE.clear()
    content = fake.attachment(png_bytes(), "a.png")
    running = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "options": "wait=true"}))
    running_id = job_in(await last_edit(fake, running, "⏳"))
    waiting = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}))
    waiting_id = job_in(await last_edit(fake, waiting, "⏳ Queued: next in line"))
    send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB))

    listing = await answer_of(fake, send(bot, fake.slash("queue")))
    assert listing == (f"Your jobs:\n`{running_id}` toy: running now\n`{waiting_id}` toy: position 1\n"
                       "Cancel one with /cancel job:<id>.")
    suggest = send(bot, fake.slash("cancel", {"job": ""}, autocomplete="job"))
    suggested = await fake.wait_call("POST", f"/interactions/{suggest['id']}/")
    assert [c["value"] for c in suggested.json["data"]["choices"]] == [running_id, waiting_id]

    cancelled = send(bot, fake.slash("cancel", {"job": waiting_id}))
    assert await answer_of(fake, cancelled) == f"🛑 Cancelling job `{waiting_id}`."
    assert await last_edit(fake, waiting, "🛑") == f"🛑 Cancelled by the requester (job `{waiting_id}`)."
    newest = send(bot, fake.slash("cancel"))  # no id: the newest job, here the running one
    assert await answer_of(fake, newest) == f"🛑 Cancelling job `{running_id}`."
    assert await last_edit(fake, running, "🛑") == f"🛑 Cancelled by the requester (job `{running_id}`)."
    nothing = send(bot, fake.slash("cancel"))
    assert await ephemeral_refusal(fake, nothing) == "⚠️ You have no jobs queued or running."
    bot_methods.GATE.set()


async def test_methods_describes_each_method_from_its_declarations(bot, fake, bot_methods):
    payload = send(bot, fake.slash("methods"))
    call = await fake.wait_call("POST", f"/interactions/{payload['id']}/")
    assert call.json["data"]["flags"] & 64
    embeds = list(call.json["data"]["embeds"])
    follow_ups = f"/webhooks/{APP_ID}/{payload['token']}"
    if len(embeds) < len(methods.method_names()):  # ten embeds a message: the rest follow
        await fake.wait_call("POST", follow_ups)
    for extra in fake.find("POST", follow_ups):
        embeds += extra.json["embeds"]
    by_name = {e["title"].split(":")[0]: e for e in embeds}
    assert set(by_name) == set(methods.method_names())
    toy = by_name["toy"]
    assert toy["title"] == "toy: Toy inverter (ready)"
    options = next(f["value"] for f in toy["fields"] if f["name"] == "Options")
    assert "`steps` (1..1000, default 5)" in options and "`fail` (one of no, bug, user, oom, default no)" in options
    sd = by_name["sd"]
    assert {"name": "Needs", "value": "a prompt", "inline": False} in sd["fields"]
    fast = by_name["fast"]  # ready offline on its built-in styles, listing the models it has
    assert fast["title"].endswith("(ready)")
    assert "26:<0..25>" in next(f["value"] for f in fast["fields"] if f["name"] == "Models here")


async def seed_runs(service, method: str, seconds: list[float]) -> None:
    """Earlier runs of ``method`` in the job log, as the service itself records them."""
    from storage import jobs as job_log

    for i, s in enumerate(seconds):
        await job_log.record_queued(service.db, f"old-{method}-{i}", "discord", "9", method, {})
        await job_log.record_started(service.db, f"old-{method}-{i}", "cpu")
        await job_log.record_finished(service.db, f"old-{method}-{i}", "done", s)


async def test_queue_gives_an_eta_from_the_methods_recent_median(bot, fake, bot_methods, service):
    await seed_runs(service, "toy", [300.0, 600.0, 900.0])  # median 10 min
    bot_methods.GATE.clear()
    content = fake.attachment(png_bytes(), "a.png")
    running = send(bot, fake.slash("stylize", {"content": content, "method": "toy", "options": "wait=true"}))
    running_id = job_in(await last_edit(fake, running, "⏳"))
    waiting = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}, who=BOB))
    await last_edit(fake, waiting, "⏳ Queued: next in line")
    mine = send(bot, fake.slash("stylize", {"content": content, "method": "toy"}))
    mine_id = job_in(await last_edit(fake, mine, "⏳ Queued: position 2"))

    listing = await answer_of(fake, send(bot, fake.slash("queue")))
    assert listing == (f"Your jobs:\n`{running_id}` toy: running now, about 10 min left\n"
                       f"`{mine_id}` toy: position 2, about 30 min left\n"
                       "Cancel one with /cancel job:<id>.")
    bot_methods.GATE.set()


async def test_stats_for_members_with_manage_server(bot, fake, bot_methods, service):
    from storage import jobs as job_log

    await seed_runs(service, "toy", [2.0, 4.0, 60.0])
    await job_log.record_queued(service.db, "bad", "discord", "9", "toy", {})
    await job_log.record_finished(service.db, "bad", "failed", None, error="ImageError")
    admin = fake.slash("stats")
    admin["member"]["permissions"] = str(int(admin["member"]["permissions"]) | 0x20)  # Manage Server
    text = await answer_of(fake, send(bot, admin))
    assert text == ("**Stylebot stats** (the whole job log)\n```\n"
                    "toy: 4 jobs (3 done, 1 failed); median 4 s, p95 60 s\n"
                    "  failed 1x: ImageError\n```")
    assert bot.tree.get_command("stats").default_permissions.manage_guild


async def test_stats_refuses_a_member_without_manage_server_in_one_line(bot, fake):
    refused = send(bot, fake.slash("stats"))  # the fake's members lack Manage Server
    assert await ephemeral_refusal(fake, refused) == (
        "⚠️ Only members with the Manage Server permission can see /stats.")
