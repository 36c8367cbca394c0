"""The adapter's parts on their own: links in text, safe downloads, rate-limited progress."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.inputs import Downloader, SlackFile, split_links
from stylebot.results import nudge
from bot.slack.flow import Place, ProgressMessage
from engine.errors import ImageError, UserError
from engine.options import STRENGTH, Option

from .conftest import BOT_TOKEN


def test_links_are_taken_out_of_the_text():
    text, ids, foreign = split_links(
        "method=tint <https://team.slack.com/files/U1/F0AB12/cat.png|cat.png> strength=0.5 "
        "https://files.slack.com/files-pri/T01-F0CD34/download/dog.jpg &amp; more")
    assert text == "method=tint strength=0.5 & more"
    assert ids == ["F0AB12", "F0CD34"] and foreign == []
    text, ids, foreign = split_links("a fox <https://example.com/x.png> http://evil.example/f")
    assert text == "a fox" and ids == []
    assert foreign == ["https://example.com/x.png", "http://evil.example/f"]


def test_stronger_and_weaker_move_a_fifth_of_the_range_and_stop_at_its_ends():
    assert nudge(STRENGTH, 0.6, +1) == 0.8 and nudge(STRENGTH, 0.6, -1) == 0.4
    assert nudge(STRENGTH, 1.0, +1) == 1.0 and nudge(STRENGTH, 0.1, -1) == 0.0
    weight = Option("style_weight", "float", 1e6, "", min=1e3, max=1e9, log_scale=True)
    assert nudge(weight, None, +1) == pytest.approx(1e6 * 10 ** 0.5)


@pytest.fixture
async def file_server(fake):
    """Another host that serves an image to anyone and redirects, to tempt the token out."""
    seen: list[str | None] = []

    async def image(request):
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=b"\x89PNG not really", content_type="image/png")

    async def bounce(request):
        raise web.HTTPFound(f"{fake.base}/files-pri/T0TEST-F0001/download/x.png")

    async def broken(request):  # a Location no URL parser can read
        return web.Response(status=302, headers={"Location": "http://[::1"})

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/bounce", bounce)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_the_bot_token_goes_only_to_slacks_file_origins(fake, file_server, photo):
    other, seen = file_server
    downloader = Downloader(BOT_TOKEN, max_bytes=10_000, origins={fake.base})
    try:
        outside = SlackFile("F9", "x.png", "image/png", 10, f"{other}/image.png")
        with pytest.raises(UserError, match="not stored on Slack's file servers"):
            await downloader.fetch(outside)
        assert seen == []  # never even asked
        info = fake.add_file(photo, "x.png")
        good = await downloader.fetch(SlackFile.from_api(info))
        assert good.data == photo and fake.downloads[-1][1] == f"Bearer {BOT_TOKEN}"
        # a redirect is followed only while it stays on an allowed origin
        bounced = Downloader(BOT_TOKEN, max_bytes=10_000, origins={fake.base, other})
        bouncing = SlackFile("F1", "x.png", "image/png", 10, f"{other}/bounce")
        assert (await bounced.fetch(bouncing)).data == photo
        await bounced.close()
    finally:
        await downloader.close()


async def test_a_sign_in_page_or_an_understated_size_is_refused(fake, photo):
    info = fake.add_file(photo, "x.png")
    wrong_token = Downloader("xoxb-wrong", max_bytes=10_000, origins={fake.base})
    with pytest.raises(UserError, match="sign-in page instead of 'x.png'.*files:read"):
        await wrong_token.fetch(SlackFile.from_api(info))
    await wrong_token.close()
    small = Downloader(BOT_TOKEN, max_bytes=50, origins={fake.base})
    liar = SlackFile.from_api({**info, "size": 10})  # says 10 bytes; the file is bigger
    with pytest.raises(ImageError, match="larger than"):
        await small.fetch(liar)
    await small.close()


async def test_progress_edits_are_rate_limited_and_the_final_text_wins(fake):
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
    message = ProgressMessage(client, Place("C1", "U1"), interval_s=0.3)
    await message.show("queued")
    for i in range(20):
        await message.show(f"progress {i}")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)  # the held-back newest text goes out once the interval has passed
    posted = fake.posted[message.ts]
    assert [e["text"] for e in posted["edits"]][-1] == "progress 19"
    assert len(posted["edits"]) <= 3  # 20 updates in ~0.3 s became at most a few edits
    await message.show("late progress")  # held back again...
    await message.finish("done")  # ...and dropped: the final text is the last word
    await asyncio.sleep(0.4)
    assert posted["text"] == "done" and posted["edits"][-1]["text"] == "done"


@pytest.mark.security
@pytest.mark.parametrize("url", ["//files.slack.com/files-pri/T1-F1/x.png", "files.slack.com/x.png",
                                 "https://files.slack.com:8443/files-pri/T1-F1/x.png",
                                 "http://files.slack.com/files-pri/T1-F1/x.png",
                                 "https://user@files.slack.com/files-pri/T1-F1/x.png", "", "https://[::1"])
async def test_a_url_off_slacks_file_servers_is_refused_before_any_request(url):
    downloader = Downloader(BOT_TOKEN, max_bytes=10_000)  # the real origins
    try:
        with pytest.raises(UserError, match="I only fetch images shared in Slack"):
            await downloader.fetch(SlackFile("F1", "x.png", "image/png", 10, url))
    finally:
        await downloader.close()


@pytest.mark.security
async def test_an_unreadable_redirect_is_refused_not_a_bug(file_server):
    other, _ = file_server
    downloader = Downloader(BOT_TOKEN, max_bytes=10_000, origins={other})
    try:
        with pytest.raises(UserError, match="I only fetch images shared in Slack"):
            await downloader.fetch(SlackFile("F1", "x.png", "image/png", 10, f"{other}/broken"))
    finally:
        await downloader.close()
