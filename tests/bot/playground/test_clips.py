"""Clips in the playground: a GIF or MP4 upload through the real `fast`, progress counted in
frames, the result served as the same kind with its frames line, fitted to the playground's
own limit (saying so), cancellation between frames, and one-line refusals. Clips are
generated here."""

from __future__ import annotations

import json
import re

import aiohttp

from tests.bot.clips import clip_toys, flat_frames, frames_of, gif_bytes, mp4_bytes, noisy_frames
from tests.bot.helpers import bot_settings, running_bot, sse_events
from tests.engine.conftest import png_bytes

assert clip_toys  # the fixture, imported for pytest to find


def clip_form(command: str, data: bytes, filename: str, content_type: str, style: bytes | None = None):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("command", command)
    form.add_field("content", data, filename=filename, content_type=content_type)
    if style is not None:
        form.add_field("style", style, filename="style.png", content_type="image/png")
    return form


async def submit(http, form) -> tuple[int, dict]:
    async with http.post("/api/command", data=form) as response:
        return response.status, await response.json()


async def test_a_gif_comes_back_as_a_gif_with_frames_fps_and_per_frame_progress(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        status, job = await submit(http, clip_form("/fast model:candy", gif_bytes(flat_frames(6)),
                                                   "dance.gif", "image/gif"))
        assert status == 200, job
        events = await sse_events(http, job["events"])
        stages = [e["stage"] for e in events if e["type"] == "progress"]
        assert "frame 4/6" in stages and "frame 6/6" in stages
        done = events[-1]
        assert done["type"] == "done"
        clip = done["meta"]["clip"]
        assert (clip["facts"], clip["kind"], clip["video"], clip["note"]) == (
            "6 frames at 25 fps (0.2 s)", "gif", False, "")
        assert done["download_name"] == f"stylebot-fast-{job['job']}.gif"
        async with http.get(done["result"]) as response:
            assert response.status == 200 and response.content_type == "image/gif"
            assert frames_of(await response.read()) == ("gif", 6, 25.0, (64, 48))
        async with http.get(done["download"]) as response:
            assert f"stylebot-fast-{job['job']}.gif" in response.headers["Content-Disposition"]


async def test_an_mp4_comes_back_as_an_mp4(pg_settings):
    async with running_bot(pg_settings) as (bot, http):
        status, job = await submit(http, clip_form("/fast model:candy", mp4_bytes(flat_frames(6), fps=12),
                                                   "walk.mp4", "video/mp4"))
        assert status == 200, job
        done = (await sse_events(http, job["events"]))[-1]
        assert done["meta"]["clip"]["video"] and done["meta"]["clip"]["kind"] == "mp4"
        async with http.get(done["result"]) as response:
            assert response.content_type == "video/mp4"
            assert frames_of(await response.read())[:3] == ("mp4", 6, 12.0)


async def test_the_playgrounds_limit_lowers_fps_then_size_and_says_so(settings, shared_weights):
    limit = 50 * 1024
    async with running_bot(bot_settings(settings, playground_result_mb=limit / 2**20)) as (bot, http):
        async with http.get("/api/config") as response:
            assert (await response.json())["max_result_bytes"] == limit
        status, job = await submit(http, clip_form("/fast model:candy", gif_bytes(noisy_frames(12)),
                                                   "noise.gif", "image/gif"))
        assert status == 200, job
        done = (await sse_events(http, job["events"]))[-1]
        clip = done["meta"]["clip"]
        side = max(done["meta"]["size"])
        assert side < 160 and clip["frames"] == 4
        assert re.fullmatch(rf"lowered to 8\.33 fps and {side} px( and \d+ colours)? to fit the "
                            rf"playground's 50 KB", clip["note"]), clip["note"]
        async with http.get(done["result"]) as response:
            data = await response.read()
        assert len(data) <= limit and frames_of(data)[1] == 4


async def test_cancel_lands_between_frames(settings, toy_methods, clip_toys):
    async with running_bot(bot_settings(settings)) as (bot, http):
        status, job = await submit(http, clip_form("/stylize method:toyclip steps:1 delay:0.3",
                                                   gif_bytes(flat_frames(12)), "a.gif", "image/gif"))
        assert status == 200, job
        events = []
        async with http.get(job["events"]) as stream:
            async for raw in stream.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                events.append(json.loads(line[6:]))
                if events[-1].get("stage") == "frame 4/12":
                    async with http.delete(f"/api/jobs/{job['job']}") as response:
                        assert response.status == 200
        assert events[-1]["type"] == "cancelled"
        assert toy_methods.BATCHES == [4, 4]  # the third batch of frames never started


async def test_gatys_refuses_a_clip_and_an_over_long_clip_names_the_limit(settings):
    async with running_bot(bot_settings(settings, max_video_s=1.0)) as (bot, http):
        status, body = await submit(http, clip_form("/stylize method:gatys", gif_bytes(flat_frames(3)),
                                                    "a.gif", "image/gif", style=png_bytes()))
        assert status == 400
        assert body["error"].startswith("Method 'gatys' takes still images only; for an animation "
                                        "or video use fast, adain, hub")
        long = gif_bytes(flat_frames(12), duration_ms=100)
        status, body = await submit(http, clip_form("/stylize method:hub", long, "long.gif", "image/gif",
                                                    style=png_bytes()))
        assert (status, body) == (400, {"error": "The content clip lasts 1.1 s; the limit is 1 s."})


async def test_a_clip_that_cannot_fit_ends_the_stream_with_one_line(settings, clip_toys):
    async with running_bot(bot_settings(settings, playground_result_mb=3000 / 2**20)) as (bot, http):
        status, job = await submit(http, clip_form("/stylize method:toyclip", gif_bytes(noisy_frames(12)),
                                                   "noise.gif", "image/gif"))
        assert status == 200, job
        last = (await sse_events(http, job["events"]))[-1]
        assert last["type"] == "failed"
        assert re.fullmatch(r"The result is \d+ KB even at 8\.33 fps, 96 px and 16 colours, over the "
                            r"playground's 3 KB limit; try a shorter clip or a smaller size\.",
                            last["message"]), last["message"]
        async with http.get(f"/api/jobs/{job['job']}/result") as response:
            assert response.status == 400 and (await response.json())["error"] == last["message"]
